/* Prints a greeting and returns 0. */
#include <stdio.h>

int main(void) {
    printf("Hello, world!\n");
    return 0;
}
