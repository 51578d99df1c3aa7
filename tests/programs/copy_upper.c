/* copy_upper IN OUT STATUS: reads IN, writes it upper-cased to OUT, prints
 * what it did, and exits with STATUS. (For testing `weft run --dir`.) */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: copy_upper IN OUT STATUS\n");
        return 2;
    }
    FILE *in = fopen(argv[1], "r");
    if (!in) {
        perror(argv[1]);
        return 1;
    }
    FILE *out = fopen(argv[2], "w");
    if (!out) {
        perror(argv[2]);
        return 1;
    }
    long n = 0;
    int c;
    while ((c = fgetc(in)) != EOF) {
        fputc(toupper(c), out);
        n++;
    }
    fclose(in);
    if (fclose(out) != 0) {
        perror("close");
        return 1;
    }
    printf("copied %ld bytes from %s to %s\n", n, argv[1], argv[2]);
    return atoi(argv[3]);
}
