/* Atomic file writes (see atomic_file.h). */
#include "util/atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/error.h"

/* Whether path names an existing FIFO, character or block device: written through in place,
 * never replaced by a rename. */
static int is_special(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 &&
           (S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode));
}

/* The directory part of path ("." for a bare name), malloc'ed; NULL when out of memory. */
static char *dir_of(const char *path)
{
    char *copy = strdup(path);
    char *dir = copy ? strdup(dirname(copy)) : NULL;
    free(copy);
    return dir;
}

/* Creates "<dir>/.<base>.XXXXXX" (six random letters and digits) exclusively and close-on-exec,
 * with mode 0666 that the kernel reduces by the umask, as for any new file. Returns its
 * descriptor and sets *name (malloc'ed), or returns -1 with errno set. */
static int open_temp(const char *dir, const char *base, char **name)
{
    static const char alnum[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    static atomic_uint_fast64_t counter; /* a new name on every try, whatever getrandom does */
    size_t len = strlen(dir) + strlen(base) + 16;
    char *tmp = malloc(len);
    if (!tmp) {
        errno = ENOMEM;
        return -1;
    }
    for (int attempt = 0; attempt < 100; attempt++) {
        uint64_t r = 0;
        if (getrandom(&r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r)
            r = (uint64_t)getpid() << 32;
        r ^= atomic_fetch_add(&counter, 1) * 0x9e3779b97f4a7c15ULL;
        char suffix[7];
        for (int i = 0; i < 6; i++, r /= 62)
            suffix[i] = alnum[r % 62];
        suffix[6] = '\0';
        snprintf(tmp, len, "%s/.%s.%s", dir, base, suffix);
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd >= 0) {
            *name = tmp;
            return fd;
        }
        if (errno != EEXIST)
            break;
    }
    int e = errno;
    free(tmp);
    errno = e;
    return -1;
}

/* Writes all of data to fd, in pieces of at most 1 GiB (write(2) moves less at once anyway);
 * 0 or an errno value. */
static int write_all(int fd, const void *data, size_t len)
{
    const unsigned char *p = data;
    while (len > 0) {
        ssize_t w = write(fd, p, len < ((size_t)1 << 30) ? len : (size_t)1 << 30);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return w < 0 ? errno : ENOSPC;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

static int fail(const char *path, int e)
{
    return vqc_error_set(e == ENOMEM ? VQC_ERR_NOMEM : VQC_ERR_IO, "cannot write %s: %s", path,
                         strerror(e));
}

static int write_special(const char *path, const vqc_bytes *parts, size_t n)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return fail(path, errno);
    int e = 0;
    for (size_t i = 0; !e && i < n; i++)
        e = write_all(fd, parts[i].data, parts[i].len);
    if (close(fd) != 0 && !e)
        e = errno;
    return e ? fail(path, e) : 0;
}

int vqc_write_file_atomic(const char *path, const vqc_bytes *parts, size_t n)
{
    if (is_special(path))
        return write_special(path, parts, n);
    char *dir = dir_of(path), *tmp = NULL;
    if (!dir)
        return fail(path, ENOMEM);
    const char *slash = strrchr(path, '/');
    int fd = open_temp(dir, slash ? slash + 1 : path, &tmp);
    int e = fd < 0 ? errno : 0;
    for (size_t i = 0; !e && i < n; i++)
        e = write_all(fd, parts[i].data, parts[i].len);
    if (!e && fsync(fd) != 0)
        e = errno;
    if (fd >= 0 && close(fd) != 0 && !e)
        e = errno;
    if (!e && rename(tmp, path) != 0)
        e = errno;
    if (e && tmp)
        unlink(tmp);
    int dfd = e ? -1 : open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) { /* makes the rename durable; best effort */
        fsync(dfd);
        close(dfd);
    }
    free(tmp);
    free(dir);
    return e ? fail(path, e) : 0;
}

int vqc_check_writable(const char *path)
{
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return vqc_error_set(VQC_ERR_IO, "%s: is a directory", path);
    if (is_special(path)) {
        if (access(path, W_OK) != 0)
            return vqc_error_set(VQC_ERR_IO, "cannot write %s: %s", path, strerror(errno));
        return 0;
    }
    char *dir = dir_of(path), *probe = NULL;
    if (!dir)
        return fail(path, ENOMEM);
    int rc = 0, fd;
    if (stat(dir, &st) != 0)
        rc = vqc_error_set(VQC_ERR_IO, "cannot write %s: directory %s: %s", path, dir,
                           strerror(errno));
    else if (!S_ISDIR(st.st_mode))
        rc = vqc_error_set(VQC_ERR_IO, "cannot write %s: %s is not a directory", path, dir);
    else if ((fd = open_temp(dir, "vqclip-probe", &probe)) < 0)
        rc = vqc_error_set(VQC_ERR_IO, "cannot write %s: directory %s: %s", path, dir,
                           strerror(errno));
    else {
        close(fd);
        unlink(probe);
    }
    free(probe);
    free(dir);
    return rc;
}
