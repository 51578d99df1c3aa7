/* Benchmark: loops that vectorise (built with -O3, and -msimd128 for wasm):
 * byte counting, an i16 dot product, a saturating u8 blend and a float
 * saxpy over 1 MiB buffers, 600 passes. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define N (1 << 20)
#define PASSES 600

static uint32_t state = 88172645u;
static uint32_t next(void) {
    state ^= state << 13;
    state ^= state >> 17;
    state ^= state << 5;
    return state;
}

int main(void) {
    uint8_t *a = malloc(N), *b = malloc(N), *blend = malloc(N);
    int16_t *h = malloc(N * sizeof *h), *k = malloc(N * sizeof *k);
    float *x = malloc(N * sizeof *x), *y = malloc(N * sizeof *y);
    for (int i = 0; i < N; i++) {
        a[i] = (uint8_t)next();
        b[i] = (uint8_t)(next() >> 8);
        h[i] = (int16_t)next();
        k[i] = (int16_t)(next() >> 4);
        x[i] = (float)(int)(next() % 2001 - 1000) * 0.001f;
        y[i] = 0;
    }
    uint64_t count = 0;
    int64_t dot = 0;
    uint32_t mix = 0;
    for (int p = 0; p < PASSES; p++) {
        uint8_t needle = (uint8_t)(p * 37);
        uint32_t c = 0;
        for (int i = 0; i < N; i++) c += a[i] == needle;
        count += c;
        uint32_t d = 0; /* wrapping sum of exact products */
        for (int i = 0; i < N / 4; i++) d += (uint32_t)((int32_t)h[i] * k[i]);
        dot += (int32_t)d;
        for (int i = 0; i < N; i++) {
            unsigned v = a[i] + (unsigned)(b[i] >> 1);
            blend[i] = v > 255 ? 255 : (uint8_t)v;
        }
        mix = mix * 31 + blend[p * 4099 % N];
        float s = 0.5f + (float)p * 0.001f;
        for (int i = 0; i < N; i++) y[i] = s * x[i] + y[i] * 0.5f;
    }
    double ysum = 0;
    for (int i = 0; i < N; i += 1024) ysum += y[i];
    printf("%llu %lld %u %.4f\n", (unsigned long long)count, (long long)dot, mix, ysum);
    free(a), free(b), free(blend), free(h), free(k), free(x), free(y);
    return 0;
}
