/* fileops BASE: file create/read/write/append/seek/truncate/rename/readdir,
 * directories, symlinks and hard links under the directory BASE. Prints one
 * line per step (the same natively and under WASI) and leaves exactly one
 * file behind: BASE/work/result.txt. Exits non-zero at the first failure. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *base;
static char buf1[1024], buf2[1024];

static const char *at(char *buf, const char *rel) {
    snprintf(buf, 1024, "%s/%s", base, rel);
    return buf;
}
#define P(rel) at(buf1, rel)
#define Q(rel) at(buf2, rel)

static void check(int ok, const char *what) {
    if (!ok) {
        printf("FAILED: %s (errno %d: %s)\n", what, errno, strerror(errno));
        exit(1);
    }
}

static int cmp(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void list(const char *rel) {
    DIR *d = opendir(P(rel));
    check(d != NULL, "opendir");
    char *names[64];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < 64) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
            continue;
        }
        char *s = malloc(strlen(e->d_name) + 3);
        char t = e->d_type == DT_DIR ? 'd' : e->d_type == DT_LNK ? 'l' : e->d_type == DT_REG ? 'f' : '?';
        sprintf(s, "%s:%c", e->d_name, t);
        names[n++] = s;
    }
    closedir(d);
    qsort(names, n, sizeof names[0], cmp);
    printf("ls %s:", rel);
    for (int i = 0; i < n; i++) {
        printf(" %s", names[i]);
        free(names[i]);
    }
    printf("\n");
}

int main(int argc, char **argv) {
    base = argc > 1 ? argv[1] : ".";
    struct stat st;

    check(mkdir(P("work"), 0755) == 0, "mkdir work");
    check(mkdir(P("work"), 0755) != 0 && errno == EEXIST, "mkdir work again is EEXIST");
    printf("mkdir ok\n");

    FILE *f = fopen(P("work/a.txt"), "w");
    check(f != NULL, "create a.txt");
    fprintf(f, "line one\nline two\n");
    check(fclose(f) == 0, "close a.txt");

    f = fopen(P("work/a.txt"), "r");
    check(f != NULL, "open a.txt");
    char line[128];
    while (fgets(line, sizeof line, f)) {
        printf("read: %s", line);
    }
    fclose(f);

    f = fopen(P("work/a.txt"), "a");
    check(f != NULL, "append a.txt");
    fprintf(f, "line three\n");
    fclose(f);
    check(stat(P("work/a.txt"), &st) == 0, "stat a.txt");
    printf("size after append: %lld\n", (long long)st.st_size);
    printf("is regular: %d\n", S_ISREG(st.st_mode) ? 1 : 0);

    int fd = open(P("work/a.txt"), O_RDWR);
    check(fd >= 0, "open O_RDWR");
    check(lseek(fd, 5, SEEK_SET) == 5, "lseek");
    char three[4] = {0};
    check(read(fd, three, 3) == 3, "read 3");
    printf("at 5: %s\n", three);
    check(pread(fd, three, 3, 14) == 3, "pread");
    printf("pread at 14: %s\n", three);
    check(lseek(fd, 0, SEEK_CUR) == 8, "pread leaves the offset");
    check(pwrite(fd, "LINE", 4, 0) == 4, "pwrite");
    check(ftruncate(fd, 13) == 0, "ftruncate");
    check(fstat(fd, &st) == 0 && st.st_size == 13, "fstat after ftruncate");
    check(lseek(fd, 0, SEEK_END) == 13, "lseek end");
    close(fd);
    f = fopen(P("work/a.txt"), "r");
    check(fgets(line, sizeof line, f) != NULL, "reread");
    fclose(f);
    printf("after pwrite+truncate: %s", line);

    check(rename(P("work/a.txt"), Q("work/b.txt")) == 0, "rename");
    check(access(P("work/a.txt"), F_OK) != 0 && errno == ENOENT, "old name gone");
    check(access(P("work/b.txt"), F_OK) == 0, "new name there");
    printf("rename ok\n");

    check(mkdir(P("work/sub"), 0755) == 0, "mkdir sub");
    f = fopen(P("work/sub/c.txt"), "w");
    check(f != NULL, "create sub/c.txt");
    fputs("c", f);
    fclose(f);
    check(symlink("b.txt", P("work/link")) == 0, "symlink");
    ssize_t n = readlink(P("work/link"), line, sizeof line - 1);
    check(n == 5, "readlink");
    line[n] = 0;
    printf("readlink: %s\n", line);
    check(lstat(P("work/link"), &st) == 0 && S_ISLNK(st.st_mode), "lstat link");
    check(stat(P("work/link"), &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 13, "stat through link");
    check(link(P("work/b.txt"), Q("work/hard.txt")) == 0, "hard link");
    check(stat(P("work/hard.txt"), &st) == 0 && st.st_nlink == 2, "nlink 2");
    list("work");
    list("work/sub");

    check(rmdir(P("work/sub")) != 0 && errno == ENOTEMPTY, "rmdir non-empty is ENOTEMPTY");
    check(unlink(P("work/sub/c.txt")) == 0, "unlink c.txt");
    check(rmdir(P("work/sub")) == 0, "rmdir sub");
    check(unlink(P("work/link")) == 0, "unlink link");
    check(unlink(P("work/hard.txt")) == 0, "unlink hard.txt");
    check(unlink(P("work/missing")) != 0 && errno == ENOENT, "unlink missing is ENOENT");
    check(open(P("work/b.txt"), O_CREAT | O_EXCL | O_WRONLY, 0644) < 0 && errno == EEXIST, "O_EXCL is EEXIST");
    check(rename(P("work/b.txt"), Q("work/result.txt")) == 0, "rename to result");
    list("work");
    printf("done\n");
    return 0;
}
