#include "aq_json.h"

size_t aq_json_utf8_seq(const void *s, size_t n) {
    const uint8_t *p = s;
    if (p[0] < 0x80)
        return 1;
    size_t len;
    uint32_t cp;
    if ((p[0] & 0xe0) == 0xc0) {
        len = 2;
        cp = p[0] & 0x1f;
    } else if ((p[0] & 0xf0) == 0xe0) {
        len = 3;
        cp = p[0] & 0x0f;
    } else if ((p[0] & 0xf8) == 0xf0) {
        len = 4;
        cp = p[0] & 0x07;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (p[i] & 0x3f);
    }
    static const uint32_t min[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

bool aq_json_utf8_ok(const void *p, size_t n) {
    const uint8_t *s = p;
    for (size_t i = 0; i < n;) {
        size_t l = aq_json_utf8_seq(s + i, n - i);
        if (!l)
            return false;
        i += l;
    }
    return true;
}

void aq_json_str(FILE *f, const void *p, size_t n) {
    const uint8_t *s = p;
    fputc('"', f);
    for (size_t i = 0; i < n;) {
        uint8_t ch = s[i];
        if (ch == '"' || ch == '\\') {
            fputc('\\', f);
            fputc(ch, f);
            i++;
        } else if (ch < 0x20 || ch == 0x7f) {
            fprintf(f, "\\u%04x", ch);
            i++;
        } else {
            size_t l = aq_json_utf8_seq(s + i, n - i);
            if (l) {
                fwrite(s + i, 1, l, f);
                i += l;
            } else {
                fputs("\\ufffd", f);
                i++;
            }
        }
    }
    fputc('"', f);
}

void aq_json_u64(FILE *f, const char *name, uint64_t v) {
    fprintf(f, ", \"%s\": %llu", name, (unsigned long long)v);
}
