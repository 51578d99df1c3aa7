/* Benchmark: a float kernel: 256x256 matrix multiply, 8 times, plus an
 * n-body-like inverse-square accumulation. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#define N 256

int main(void) {
    double *a = malloc(sizeof(double) * N * N), *b = malloc(sizeof(double) * N * N),
           *c = malloc(sizeof(double) * N * N);
    for (int i = 0; i < N * N; i++) { a[i] = (i % 17) * 0.25; b[i] = (i % 13) * 0.5; }
    double trace = 0;
    for (int rep = 0; rep < 8; rep++) {
        for (int i = 0; i < N; i++)
            for (int j = 0; j < N; j++) {
                double s = 0;
                for (int k = 0; k < N; k++) s += a[i * N + k] * b[k * N + j];
                c[i * N + j] = s;
            }
        for (int i = 0; i < N; i++) trace += c[i * N + i];
        a[rep] += 1.0;
    }
    double e = 0;
    for (int i = 0; i < 2000; i++)
        for (int j = i + 1; j < 2000; j++) {
            double dx = (i - j) * 0.01, dy = (i * j % 7) * 0.1 + 1.0;
            e += 1.0 / sqrt(dx * dx + dy * dy);
        }
    printf("%.6f %.6f\n", trace, e);
    return 0;
}
