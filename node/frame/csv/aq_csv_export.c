#include "aq_csv_export.h"

#include "aq_csv_value.h"
#include "aq_error.h"

#include <stdio.h>
#include <string.h>

static bool needs_quotes(const char *p, size_t len, char sep, bool text_col, const aq_csv_na *na) {
    if (len == 0 || p[0] == ' ' || p[0] == '\t' || p[len - 1] == ' ' || p[len - 1] == '\t' ||
        p[0] == '#' || (len >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0))
        return true;
    for (size_t i = 0; i < len; i++)
        if (p[i] == sep || p[i] == '"' || p[i] == '\n' || p[i] == '\r')
            return true;
    if (aq_csv_is_na(p, len, false, na))
        return true;
    if (text_col) {
        /* aquifer reads quoted numbers as numbers too (a column stays text through its other
         * values or a forced type), but other readers take the quotes as a hint */
        int64_t iv;
        double dv;
        if (aq_csv_parse_int(p, len, &iv) || aq_csv_parse_float(p, len, &dv) ||
            aq_csv_parse_time(p, len, &iv))
            return true;
    }
    return false;
}

static void put_text(aq_wr *w, const char *p, size_t len, char sep, bool text_col,
                     const aq_csv_na *na) {
    if (!needs_quotes(p, len, sep, text_col, na)) {
        aq_wr_bytes(w, p, len);
        return;
    }
    aq_wr_u8(w, '"');
    const char *end = p + len;
    while (p < end) {
        const char *q = memchr(p, '"', (size_t)(end - p));
        const char *stop = q ? q + 1 : end;
        aq_wr_bytes(w, p, (size_t)(stop - p));
        if (q)
            aq_wr_u8(w, '"');
        p = stop;
    }
    aq_wr_u8(w, '"');
}

int aq_csv_export(const aq_csv_col *cols, uint32_t ncols, const char *const *names, uint32_t begin,
                  uint32_t end, const aq_csv_export_opts *opts, aq_wr *out) {
    char sep = opts && opts->sep ? opts->sep : ',';
    aq_csv_na dna = aq_csv_na_default();
    const aq_csv_na *na = opts && opts->na ? opts->na : &dna;
    if (ncols == 0 || begin > end)
        return AQ_EINVAL;
    for (uint32_t j = 0; j < ncols; j++)
        if (cols[j].rows != cols[0].rows)
            return AQ_EINVAL;
    if (end > cols[0].rows)
        return AQ_EINVAL;
    if (opts && opts->header && names) {
        for (uint32_t j = 0; j < ncols; j++) {
            if (j)
                aq_wr_u8(out, (uint8_t)sep);
            put_text(out, names[j], strlen(names[j]), sep, false, na);
        }
        aq_wr_u8(out, '\n');
    }
    char buf[48];
    for (uint32_t r = begin; r < end; r++) {
        for (uint32_t j = 0; j < ncols; j++) {
            const aq_csv_col *c = &cols[j];
            if (j)
                aq_wr_u8(out, (uint8_t)sep);
            if (aq_csv_col_is_na(c, r)) {
                if (ncols == 1)
                    aq_wr_bytes(out, "\"\"", 2);
                continue;
            }
            int n = 0;
            switch (c->type) {
            case AQ_CSV_T_INT:
                n = snprintf(buf, sizeof buf, "%lld", (long long)aq_csv_col_int(c, r));
                break;
            case AQ_CSV_T_FLOAT:
                n = aq_csv_format_double(aq_csv_col_num(c, r), buf);
                break;
            case AQ_CSV_T_TIME:
                n = aq_csv_format_time_shape(aq_csv_col_int(c, r), c->tshape, buf);
                break;
            case AQ_CSV_T_CAT:
            case AQ_CSV_T_STR: {
                size_t len = 0;
                const char *p = aq_csv_col_str(c, r, &len);
                put_text(out, p, len, sep, true, na);
                break;
            }
            default:
                break;
            }
            aq_wr_bytes(out, buf, (size_t)n);
        }
        aq_wr_u8(out, '\n');
    }
    return out->ok ? 0 : AQ_ENOMEM;
}
