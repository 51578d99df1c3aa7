/* Benchmark: FNV-1a and a 64-bit mix over a 16 MiB buffer, 8 passes. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int main(void) {
    size_t n = 16u << 20;
    uint8_t *buf = malloc(n);
    uint32_t x = 88172645u;
    for (size_t i = 0; i < n; i++) { x ^= x << 13; x ^= x >> 17; x ^= x << 5; buf[i] = (uint8_t)x; }
    uint64_t fnv = 1469598103934665603ull, mix = 0;
    for (int pass = 0; pass < 8; pass++) {
        for (size_t i = 0; i < n; i++) { fnv ^= buf[i]; fnv *= 1099511628211ull; }
        for (size_t i = 0; i + 8 <= n; i += 8) {
            uint64_t w = 0;
            for (int k = 0; k < 8; k++) w |= (uint64_t)buf[i + k] << (8 * k);
            mix ^= w * 0x9e3779b97f4a7c15ull;
            mix = (mix << 27) | (mix >> 37);
        }
    }
    printf("%016llx %016llx\n", (unsigned long long)fnv, (unsigned long long)mix);
    return 0;
}
