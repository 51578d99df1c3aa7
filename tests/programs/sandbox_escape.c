/* sandbox_escape SANDBOX RO: tries to reach files outside the pre-opened
 * directory SANDBOX (whose host parent holds outside/secret.txt, and in which
 * the host made a symlink `escape` to that directory) and to write in the
 * read-only pre-opened directory RO. Every attempt must fail with
 * ENOTCAPABLE; prints one line per attempt and exits with the number of
 * attempts that did not. (WASI only: natively these would succeed.) */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int failures = 0;
static char path[1024], path2[1024];

static const char *in(const char *dir, const char *rel) {
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    return path;
}

static void expect_refused(const char *what, int result) {
    if (result >= 0) {
        printf("%s: ESCAPED (succeeded)\n", what);
        failures++;
    } else if (errno != ENOTCAPABLE) {
        printf("%s: wrong errno %d (%s)\n", what, errno, strerror(errno));
        failures++;
    } else {
        printf("%s: refused (%s)\n", what, strerror(errno));
    }
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: sandbox_escape SANDBOX RO\n");
        return 100;
    }
    const char *sb = argv[1], *ro = argv[2];
    struct stat st;

    expect_refused("open ../outside", open(in(sb, "../outside/secret.txt"), O_RDONLY));
    expect_refused("open absolute host path", open("/etc/passwd", O_RDONLY));
    expect_refused("stat ..", stat(in(sb, ".."), &st));
    DIR *d = opendir(in(sb, ".."));
    expect_refused("opendir ..", d ? 0 : -1);

    int dfd = open(sb, O_RDONLY | O_DIRECTORY);
    if (dfd < 0) {
        printf("cannot open the sandbox: %s\n", strerror(errno));
        return 100;
    }
    expect_refused("openat ../outside", openat(dfd, "../outside/secret.txt", O_RDONLY));
    mkdir(in(sb, "sub"), 0755);
    expect_refused("openat sub/../../outside", openat(dfd, "sub/../../outside/secret.txt", O_RDONLY));
    expect_refused("openat create ../created", openat(dfd, "../created.txt", O_CREAT | O_WRONLY, 0644));
    expect_refused("mkdir ../evil", mkdir(in(sb, "../evil"), 0755));

    /* A symlink made by the host, pointing out (absolute target). */
    expect_refused("open host symlink out", open(in(sb, "escape/secret.txt"), O_RDONLY));
    expect_refused("stat host symlink out", stat(in(sb, "escape/secret.txt"), &st));

    /* Symlinks made by the guest. */
    if (symlink("../outside", in(sb, "link_out")) != 0) {
        printf("symlink ../outside: unexpected failure %s\n", strerror(errno));
        failures++;
    }
    expect_refused("open guest symlink out", open(in(sb, "link_out/secret.txt"), O_RDONLY));
    expect_refused("create through guest symlink", open(in(sb, "link_out/new.txt"), O_CREAT | O_WRONLY, 0644));
    expect_refused("unlink through guest symlink", unlink(in(sb, "link_out/secret.txt")));
    snprintf(path2, sizeof path2, "%s/stolen.txt", sb);
    expect_refused("rename through guest symlink", rename(in(sb, "link_out/secret.txt"), path2));
    expect_refused("link through guest symlink", link(in(sb, "link_out/secret.txt"), path2));
    expect_refused("symlink to absolute path", symlink("/etc/passwd", in(sb, "abs_link")));

    /* A directory swapped for a symlink after it was used. */
    mkdir(in(sb, "swap"), 0755);
    int ok = open(in(sb, "swap/x"), O_CREAT | O_WRONLY, 0644);
    if (ok < 0) {
        printf("create swap/x: unexpected failure %s\n", strerror(errno));
        failures++;
    } else {
        close(ok);
    }
    snprintf(path2, sizeof path2, "%s/swap.old", sb);
    rename(in(sb, "swap"), path2);
    symlink("../outside", in(sb, "swap"));
    expect_refused("open after swap", open(in(sb, "swap/secret.txt"), O_RDONLY));

    /* The read-only pre-open. */
    expect_refused("create in read-only dir", open(in(ro, "new.txt"), O_CREAT | O_WRONLY, 0644));
    expect_refused("mkdir in read-only dir", mkdir(in(ro, "newdir"), 0755));
    expect_refused("unlink in read-only dir", unlink(in(ro, "data.txt")));
    expect_refused("truncate in read-only dir", open(in(ro, "data.txt"), O_WRONLY | O_TRUNC));
    expect_refused("open for writing in read-only dir", open(in(ro, "data.txt"), O_WRONLY));
    expect_refused("open for appending in read-only dir", open(in(ro, "data.txt"), O_RDWR | O_APPEND));
    int rfd = open(in(ro, "data.txt"), O_RDONLY);
    if (rfd < 0) {
        printf("open read-only file for reading: unexpected failure %s\n", strerror(errno));
        failures++;
    } else {
        char c;
        if (read(rfd, &c, 1) != 1) {
            printf("read in read-only dir: unexpected failure %s\n", strerror(errno));
            failures++;
        }
        close(rfd);
    }

    printf("%d escape(s)\n", failures);
    return failures;
}
