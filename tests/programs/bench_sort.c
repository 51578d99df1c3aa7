/* Benchmark: sort 4M pseudo-random 32-bit integers (quicksort + insertion
 * sort), then print a checksum so the work cannot be optimised away. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static void isort(uint32_t *a, long n) {
    for (long i = 1; i < n; i++) {
        uint32_t v = a[i];
        long j = i - 1;
        while (j >= 0 && a[j] > v) { a[j + 1] = a[j]; j--; }
        a[j + 1] = v;
    }
}

static void qsort_u32(uint32_t *a, long n) {
    while (n > 16) {
        uint32_t p = a[n / 2];
        long i = 0, j = n - 1;
        while (i <= j) {
            while (a[i] < p) i++;
            while (a[j] > p) j--;
            if (i <= j) { uint32_t t = a[i]; a[i] = a[j]; a[j] = t; i++; j--; }
        }
        if (j + 1 < n - i) { qsort_u32(a, j + 1); a += i; n -= i; }
        else { qsort_u32(a + i, n - i); n = j + 1; }
    }
    isort(a, n);
}

int main(void) {
    long n = 4L << 20;
    uint32_t *a = malloc(n * sizeof *a);
    uint32_t x = 2463534242u;
    for (long i = 0; i < n; i++) { x ^= x << 13; x ^= x >> 17; x ^= x << 5; a[i] = x; }
    qsort_u32(a, n);
    uint64_t sum = 0;
    for (long i = 1; i < n; i++) { if (a[i - 1] > a[i]) return 1; sum += a[i] * (uint64_t)(i & 1023); }
    printf("%llu\n", (unsigned long long)sum);
    return 0;
}
