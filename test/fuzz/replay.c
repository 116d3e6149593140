/* Replays every file of one corpus directory (AQ_FUZZ_CORPUS) through a fuzz target's entry
 * function, so inputs that once crashed stay fixed in the ordinary unit test builds too. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    cr_assert(f, "cannot open %s", path);
    uint8_t *buf = NULL;
    size_t cap = 0, n = 0, got;
    do {
        if (n == cap) {
            cap = cap ? cap * 2 : 4096;
            buf = realloc(buf, cap);
            cr_assert(buf);
        }
        got = fread(buf + n, 1, cap - n, f);
        n += got;
    } while (got);
    fclose(f);
    *len = n;
    return buf;
}

Test(corpus, every_file_replays) {
    DIR *d = opendir(AQ_FUZZ_CORPUS);
    cr_assert(d, "cannot open corpus %s", AQ_FUZZ_CORPUS);
    int files = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        char path[4096];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", AQ_FUZZ_CORPUS, e->d_name);
        if (stat(path, &st) || !S_ISREG(st.st_mode))
            continue;
        size_t len;
        uint8_t *buf = slurp(path, &len);
        /* A target abort()s on a broken invariant; ASan and UBSan stop the process on bad reads. */
        LLVMFuzzerTestOneInput(buf, len);
        free(buf);
        files++;
    }
    closedir(d);
    cr_assert_gt(files, 0, "corpus %s is empty", AQ_FUZZ_CORPUS);
}
