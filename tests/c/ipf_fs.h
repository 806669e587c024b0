/*
 * ipf_fs.h: the few file-system helpers the C ABI tests need (temporary directory, write/read a file, list and
 * remove a directory, threads), for POSIX and for Windows (MinGW, run under wine by scripts/check_windows.sh).
 */
#ifndef IPF_FS_H
#define IPF_FS_H

#if !defined(_WIN32) && !defined(_POSIX_C_SOURCE)
#error "compile with -D_POSIX_C_SOURCE=200809L (tests/CMakeLists.txt does)"
#endif

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifdef _WIN32
#include <direct.h>
#include <io.h>
#include <process.h>
#include <windows.h>
#define IPF_SEP "\\"
#else
#include <pthread.h>
#include <unistd.h>
#define IPF_SEP "/"
#endif

#ifndef IPF_INLINE
#define IPF_INLINE static inline
#endif

/* dir + separator + name into dst (truncated to cap - 1 bytes; the inputs may overlap dst). Returns dst. */
IPF_INLINE char *ipf_join(char *dst, size_t cap, const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name), s = strlen(IPF_SEP);
    if (a > cap - 1)
        a = cap - 1;
    if (s > cap - 1 - a)
        s = cap - 1 - a;
    if (b > cap - 1 - a - s)
        b = cap - 1 - a - s;
    memmove(dst + a + s, name, b); /* name first: it may live where dir's bytes go */
    memmove(dst, dir, a);
    memcpy(dst + a, IPF_SEP, s);
    dst[a + s + b] = '\0';
    return dst;
}

/* ipf_join into a static ring of 32 buffers: the result stays valid for the next 31 calls. Copy a path that must
 * live longer into a local buffer with ipf_join. */
IPF_INLINE const char *ipf_path(const char *dir, const char *name)
{
    static char ring[32][1024];
    static unsigned next;
    return ipf_join(ring[next++ % 32], sizeof ring[0], dir, name);
}

/* Creates a fresh empty directory under $IPUFLOW_TEST_TMPDIR (or the system's temp dir). Returns its path, static
 * storage; NULL on failure. */
IPF_INLINE const char *ipf_mkdtemp(const char *tag)
{
    static char buf[1024];
    const char *base = getenv("IPUFLOW_TEST_TMPDIR");
#ifdef _WIN32
    char tmp[MAX_PATH];
    static unsigned counter;
    if (!base || !base[0]) {
        DWORD n = GetTempPathA(sizeof tmp, tmp);
        if (n == 0 || n >= sizeof tmp)
            return NULL;
        if (tmp[n - 1] == '\\')
            tmp[n - 1] = '\0';
        base = tmp;
    }
    for (int i = 0; i < 100; i++) {
        snprintf(buf, sizeof buf, "%s\\ipf-%s-%lu-%u", base, tag, (unsigned long)GetCurrentProcessId(), counter++);
        if (_mkdir(buf) == 0)
            return buf;
    }
    return NULL;
#else
    if (!base || !base[0])
        base = getenv("TMPDIR");
    if (!base || !base[0])
        base = "/tmp";
    mkdir(base, 0777); /* may already exist */
    snprintf(buf, sizeof buf, "%s/ipf-%s-XXXXXX", base, tag);
    return mkdtemp(buf);
#endif
}

IPF_INLINE int ipf_write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t n = len ? fwrite(data, 1, len, f) : 0;
    int rc = fclose(f);
    return (n == len && rc == 0) ? 0 : -1;
}

/* Reads a whole file into a malloc'd buffer (freed by the caller); NULL on failure. */
IPF_INLINE unsigned char *ipf_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    unsigned char *buf = (unsigned char *)malloc(cap);
    while (buf) {
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (n < cap)
            break;
        unsigned char *bigger = (unsigned char *)realloc(buf, cap * 2);
        if (!bigger) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = bigger;
        cap *= 2;
    }
    fclose(f);
    *len = n;
    return buf;
}

IPF_INLINE int ipf_is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

IPF_INLINE int ipf_mkdir(const char *path)
{
#ifdef _WIN32
    return _mkdir(path);
#else
    return mkdir(path, 0777);
#endif
}

/* Number of entries in a directory other than . and .. (-1 if it cannot be opened). */
IPF_INLINE int ipf_count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

/* Removes a directory tree (files and sub-directories); best effort. */
IPF_INLINE void ipf_rmtree(const char *dir)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            char child[1024];
            ipf_join(child, sizeof child, dir, e->d_name);
            struct stat st;
#ifdef _WIN32
            if (stat(child, &st) == 0 && S_ISDIR(st.st_mode))
#else
            if (lstat(child, &st) == 0 && S_ISDIR(st.st_mode)) /* never follow a link out of the tree */
#endif
                ipf_rmtree(child);
            else
                remove(child);
        }
        closedir(d);
    }
#ifdef _WIN32
    _rmdir(dir);
#else
    rmdir(dir);
#endif
}

/* Runs fn(arg) on a new thread and waits for it. Returns 0 on success. */
typedef void (*ipf_thread_fn)(void *);
struct ipf_thread_call {
    ipf_thread_fn fn;
    void *arg;
};
#ifdef _WIN32
static unsigned __stdcall ipf_thread_tramp(void *p)
{
    struct ipf_thread_call *c = (struct ipf_thread_call *)p;
    c->fn(c->arg);
    return 0;
}
IPF_INLINE int ipf_run_thread(ipf_thread_fn fn, void *arg)
{
    struct ipf_thread_call c = {fn, arg};
    uintptr_t h = _beginthreadex(NULL, 0, ipf_thread_tramp, &c, 0, NULL);
    if (!h)
        return -1;
    WaitForSingleObject((HANDLE)h, INFINITE);
    CloseHandle((HANDLE)h);
    return 0;
}
#else
static void *ipf_thread_tramp(void *p)
{
    struct ipf_thread_call *c = (struct ipf_thread_call *)p;
    c->fn(c->arg);
    return NULL;
}
IPF_INLINE int ipf_run_thread(ipf_thread_fn fn, void *arg)
{
    struct ipf_thread_call c = {fn, arg};
    pthread_t t;
    if (pthread_create(&t, NULL, ipf_thread_tramp, &c) != 0)
        return -1;
    return pthread_join(t, NULL);
}
#endif

#endif /* IPF_FS_H */
