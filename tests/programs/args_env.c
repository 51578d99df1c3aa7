/* Echoes its arguments (after argv[0]) and a few environment variables. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern char **environ;

int main(int argc, char **argv) {
    printf("argc=%d\n", argc);
    for (int i = 1; i < argc; i++) {
        printf("argv[%d]=[%s]\n", i, argv[i]);
    }
    const char *names[] = {"WEFT_TEST_A", "WEFT_TEST_B", "WEFT_TEST_EMPTY", "WEFT_TEST_MISSING"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const char *v = getenv(names[i]);
        if (v) {
            printf("%s=[%s]\n", names[i], v);
        } else {
            printf("%s unset\n", names[i]);
        }
    }
    int n = 0;
    for (char **e = environ; *e; e++) {
        if (strncmp(*e, "WEFT_TEST_", 10) == 0) {
            n++;
        }
    }
    printf("WEFT_TEST_* count=%d\n", n);
    return 0;
}
