/* SIMD kernels: loops clang auto-vectorises at -O3 -msimd128, and kernels
 * written with <wasm_simd128.h> intrinsics (with a plain C version for the
 * native build). Every kernel prints a checksum; the wasm and native builds
 * must print the same lines. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#ifdef __wasm_simd128__
#include <wasm_simd128.h>
#endif

#define N 4099 /* not a multiple of 16: the vector loops have tails */

static uint8_t bytes[N];
static int32_t xs[N], ys[N];
static int16_t hs[N], ks[N];
static float fa[N], fb[N], fc[N];

/* xorshift32: the same inputs on every platform. */
static uint32_t state = 2463534242u;
static uint32_t next(void) {
    state ^= state << 13;
    state ^= state >> 17;
    state ^= state << 5;
    return state;
}

static uint32_t fnv(const void *p, size_t n) {
    const uint8_t *b = p;
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 16777619u;
    return h;
}

/* ---- auto-vectorised ---- */

static uint32_t dot_i32(void) {
    uint32_t s = 0;
    for (int i = 0; i < N; i++) s += (uint32_t)xs[i] * (uint32_t)ys[i];
    return s;
}

static int64_t dot_i16_widening(void) {
    int64_t s = 0;
    for (int i = 0; i < N; i++) s += (int32_t)hs[i] * (int32_t)ks[i];
    return s;
}

static uint32_t saturating_brighten(void) {
    static uint8_t out[N];
    for (int i = 0; i < N; i++) {
        unsigned v = bytes[i] + 77u;
        out[i] = v > 255 ? 255 : (uint8_t)v;
    }
    return fnv(out, N);
}

static uint32_t clamp_and_abs(void) {
    static int32_t out[N];
    for (int i = 0; i < N; i++) {
        int32_t v = xs[i] < 0 ? -xs[i] : xs[i];
        v = v > 1000000 ? 1000000 : v;
        out[i] = v < 12345 ? 12345 : v;
    }
    return fnv(out, sizeof out);
}

static uint32_t saxpy(void) {
    for (int i = 0; i < N; i++) fc[i] = 2.5f * fa[i] + fb[i];
    return fnv(fc, sizeof fc);
}

static uint32_t float_min_max(void) {
    static float out[N];
    for (int i = 0; i < N; i++) {
        float lo = fa[i] < fb[i] ? fa[i] : fb[i];
        float hi = fa[i] < fb[i] ? fb[i] : fa[i];
        out[i] = hi - lo;
    }
    return fnv(out, sizeof out);
}

static uint32_t widen_narrow(void) {
    static int16_t out[N];
    for (int i = 0; i < N; i++) out[i] = (int16_t)((bytes[i] * 3) >> 1);
    return fnv(out, sizeof out);
}

/* ---- intrinsics (plain C natively) ---- */

/* Index of the first `needle` at or after `from`, or -1. */
static int find_byte(const uint8_t *p, int n, int from, uint8_t needle) {
    int i = from;
#ifdef __wasm_simd128__
    v128_t want = wasm_i8x16_splat((int8_t)needle);
    for (; i + 16 <= n; i += 16) {
        uint32_t mask = wasm_i8x16_bitmask(wasm_i8x16_eq(wasm_v128_load(p + i), want));
        if (mask) return i + __builtin_ctz(mask);
    }
#endif
    for (; i < n; i++)
        if (p[i] == needle) return i;
    return -1;
}

static uint32_t byte_search(void) {
    uint32_t h = 0;
    for (int needle = 0; needle < 256; needle += 37) {
        int count = 0, last = -1;
        for (int at = find_byte(bytes, N, 0, (uint8_t)needle); at >= 0;
             at = find_byte(bytes, N, at + 1, (uint8_t)needle)) {
            count++;
            last = at;
        }
        h = h * 31 + (uint32_t)count * 7919u + (uint32_t)last;
    }
    return h;
}

/* Reverses each 16-byte block (a shuffle), then sums the unsigned bytes
 * (extadd pairwise) of the block's byte-wise maximum with its reverse. */
static uint32_t reverse_and_reduce(void) {
    static uint8_t rev[N];
    uint32_t total = 0;
    int i = 0;
#ifdef __wasm_simd128__
    for (; i + 16 <= N; i += 16) {
        v128_t v = wasm_v128_load(bytes + i);
        v128_t r = wasm_i8x16_shuffle(v, v, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
        wasm_v128_store(rev + i, r);
        v128_t m = wasm_u8x16_max(v, r);
        v128_t s16 = wasm_u16x8_extadd_pairwise_u8x16(m);
        v128_t s32 = wasm_u32x4_extadd_pairwise_u16x8(s16);
        total += wasm_u32x4_extract_lane(s32, 0) + wasm_u32x4_extract_lane(s32, 1) +
                 wasm_u32x4_extract_lane(s32, 2) + wasm_u32x4_extract_lane(s32, 3);
    }
#else
    for (; i + 16 <= N; i += 16)
        for (int j = 0; j < 16; j++) {
            uint8_t a = bytes[i + j], b = bytes[i + 15 - j];
            rev[i + j] = b;
            total += a > b ? a : b;
        }
#endif
    for (; i < N; i++) {
        rev[i] = bytes[i];
        total += bytes[i];
    }
    return total * 2654435761u ^ fnv(rev, N);
}

/* Q15 fixed-point multiply with rounding and saturation, 8 lanes at a time. */
static uint32_t q15_mul(void) {
    static int16_t out[N];
    int i = 0;
#ifdef __wasm_simd128__
    for (; i + 8 <= N; i += 8) {
        v128_t a = wasm_v128_load(hs + i), b = wasm_v128_load(ks + i);
        wasm_v128_store(out + i, wasm_i16x8_q15mulr_sat(a, b));
    }
#endif
    for (; i < N; i++) {
        int32_t p = ((int32_t)hs[i] * ks[i] + 0x4000) >> 15;
        out[i] = (int16_t)(p > 32767 ? 32767 : p);
    }
    return fnv(out, sizeof out);
}

int main(void) {
    for (int i = 0; i < N; i++) {
        uint32_t r = next();
        bytes[i] = (uint8_t)(r >> 7);
        xs[i] = (int32_t)(next() >> 1) - (1 << 30); /* never INT32_MIN */
        ys[i] = (int32_t)(next() >> 3) - (1 << 27);
        hs[i] = (int16_t)next();
        ks[i] = i % 97 == 0 ? INT16_MIN : (int16_t)next();
        fa[i] = (float)(int32_t)(next() % 20001 - 10000) * 0.125f;
        fb[i] = (float)(int32_t)(next() % 30001 - 15000) * 0.0625f;
    }
    hs[5] = INT16_MIN; /* q15mulr_sat's one saturating case: MIN * MIN */
    ks[5] = INT16_MIN;
    printf("dot_i32 %u\n", dot_i32());
    printf("dot_i16_widening %lld\n", (long long)dot_i16_widening());
    printf("saturating_brighten %08x\n", saturating_brighten());
    printf("clamp_and_abs %08x\n", clamp_and_abs());
    printf("saxpy %08x\n", saxpy());
    printf("float_min_max %08x\n", float_min_max());
    printf("widen_narrow %08x\n", widen_narrow());
    printf("byte_search %08x\n", byte_search());
    printf("reverse_and_reduce %08x\n", reverse_and_reduce());
    printf("q15_mul %08x\n", q15_mul());
    return 0;
}
