/* Checks the clocks and the random source; prints one line per check. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int64_t ns(struct timespec t) {
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

int main(void) {
    int failures = 0;
    struct timespec t;

    if (clock_gettime(CLOCK_REALTIME, &t) == 0 && t.tv_sec > 1600000000) {
        printf("realtime ok\n");
    } else {
        printf("realtime FAILED\n");
        failures++;
    }
    time_t now = time(NULL);
    if (now >= t.tv_sec && now - t.tv_sec < 60) {
        printf("time ok\n");
    } else {
        printf("time FAILED\n");
        failures++;
    }

    struct timespec m0, m1;
    clock_gettime(CLOCK_MONOTONIC, &m0);
    clock_gettime(CLOCK_MONOTONIC, &m1);
    if (ns(m1) >= ns(m0)) {
        printf("monotonic ok\n");
    } else {
        printf("monotonic FAILED\n");
        failures++;
    }

    /* Sleeping 2 ms moves the monotonic clock by at least that much. */
    struct timespec req = {0, 2000000};
    clock_gettime(CLOCK_MONOTONIC, &m0);
    int r = nanosleep(&req, NULL);
    clock_gettime(CLOCK_MONOTONIC, &m1);
    if (r == 0 && ns(m1) - ns(m0) >= 2000000) {
        printf("sleep ok\n");
    } else {
        printf("sleep FAILED\n");
        failures++;
    }

    struct timespec res;
    if (clock_getres(CLOCK_MONOTONIC, &res) == 0 && ns(res) > 0 && ns(res) <= 1000000) {
        printf("resolution ok\n");
    } else {
        printf("resolution FAILED\n");
        failures++;
    }

    unsigned char a[32], b[32], zero[32] = {0};
    if (getentropy(a, sizeof a) == 0 && getentropy(b, sizeof b) == 0 &&
        memcmp(a, b, sizeof a) != 0 && memcmp(a, zero, sizeof a) != 0) {
        printf("random ok\n");
    } else {
        printf("random FAILED\n");
        failures++;
    }
    return failures;
}
