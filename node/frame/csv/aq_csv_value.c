#include "aq_csv_value.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const aq_csv_na_defaults[] = {"", "NA"};

aq_csv_na aq_csv_na_make(const char *const *s, size_t n) {
    aq_csv_na na = {s, n, 0, {0, 0, 0, 0}};
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(s[i]);
        uint8_t c = (uint8_t)s[i][0];
        na.lens |= 1ull << (l < 63 ? l : 63);
        na.first[c >> 6] |= 1ull << (c & 63);
    }
    return na;
}

aq_csv_na aq_csv_na_default(void) {
    return aq_csv_na_make(aq_csv_na_defaults, 2);
}

static void trim(const char **p, size_t *len) {
    const char *s = *p;
    size_t n = *len;
    while (n && (s[0] == ' ' || s[0] == '\t')) {
        s++;
        n--;
    }
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    *p = s;
    *len = n;
}

static bool is_nan_word(const char *p, size_t len) {
    return len == 3 && (p[0] | 0x20) == 'n' && (p[1] | 0x20) == 'a' && (p[2] | 0x20) == 'n';
}

bool aq_csv_is_na(const char *p, size_t len, bool quoted, const aq_csv_na *na) {
    if (quoted && len != 0)
        return false;
    if (len == 0)
        return na->lens & 1; /* "" is a spelling */
    /* Blanks around a spelling are dropped ("NA " is NA), but a field of blanks alone is text:
     * it is a value in a text column, not the empty spelling. Most fields have no blank at
     * either end: two byte tests spare them the trimming loops. */
    if (p[0] == ' ' || p[0] == '\t' || p[len - 1] == ' ' || p[len - 1] == '\t') {
        trim(&p, &len);
        if (len == 0)
            return false;
    }
    /* Called for every field: its length rules out nearly every value, the first byte most of
     * the rest, before any strlen or memcmp. */
    if (!(na->lens >> (len < 63 ? len : 63) & 1))
        return false;
    for (size_t i = 0; i < na->n; i++) {
        const char *s = na->s[i];
        if (s[0] == p[0] && strlen(s) == len && memcmp(s, p, len) == 0)
            return true;
    }
    return false;
}

bool aq_csv_is_nan_word(const char *p, size_t len) {
    trim(&p, &len);
    if (len && (p[0] == '+' || p[0] == '-')) {
        p++;
        len--;
    }
    return is_nan_word(p, len);
}

/* A number written with a zero before another digit ("007", "-01", "00.5") is an identifier or
 * a code (ZIP codes, account numbers): reading it as a number would lose its zeros. */
static bool leading_zero(const char *p, size_t len) {
    size_t i = len && (p[0] == '+' || p[0] == '-');
    return i + 1 < len && p[i] == '0' && p[i + 1] >= '0' && p[i + 1] <= '9';
}

static bool digit(char c) {
    return c >= '0' && c <= '9';
}

bool aq_csv_parse_int(const char *p, size_t len, int64_t *out) {
    trim(&p, &len);
    size_t i = 0;
    bool neg = false;
    if (i < len && (p[i] == '+' || p[i] == '-')) {
        neg = p[i] == '-';
        i++;
    }
    if (i == len)
        return false;
    uint64_t v = 0;
    for (; i < len; i++) {
        if (!digit(p[i]))
            return false;
        if (v > (UINT64_MAX - 9) / 10)
            return false;
        v = v * 10 + (uint64_t)(p[i] - '0');
    }
    if (neg) {
        if (v > (uint64_t)INT64_MAX + 1)
            return false;
        *out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
    } else {
        if (v > (uint64_t)INT64_MAX)
            return false;
        *out = (int64_t)v;
    }
    return true;
}

static bool ieq(const char *p, size_t len, const char *w) {
    size_t n = strlen(w);
    if (n != len)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((p[i] | 0x20) != w[i])
            return false;
    return true;
}

/* Only decimal syntax reaches strtod: hex floats, "nan(...)" and trailing junk are text. */
static bool float_syntax(const char *p, size_t len) {
    size_t i = 0, nd = 0;
    if (i < len && (p[i] == '+' || p[i] == '-'))
        i++;
    while (i < len && digit(p[i])) {
        i++;
        nd++;
    }
    if (i < len && p[i] == '.') {
        i++;
        while (i < len && digit(p[i])) {
            i++;
            nd++;
        }
    }
    if (nd == 0)
        return false;
    if (i < len && (p[i] == 'e' || p[i] == 'E')) {
        i++;
        if (i < len && (p[i] == '+' || p[i] == '-'))
            i++;
        size_t ne = 0;
        while (i < len && digit(p[i])) {
            i++;
            ne++;
        }
        if (ne == 0)
            return false;
    }
    return i == len;
}

#ifdef __SIZEOF_INT128__
/* x * 2^bexp, x > 0, rounded to nearest even double; sticky: the true value is a little above x
 * (a division left a remainder). Exact for the ranges exact_decimal gives it. */
static double round_u128(unsigned __int128 x, int bexp, bool sticky) {
    uint64_t hi = (uint64_t)(x >> 64);
    int bits = hi ? 128 - __builtin_clzll(hi) : 64 - __builtin_clzll((uint64_t)x);
    if (bits <= 53)
        return ldexp((double)(uint64_t)x, bexp); /* sticky is 0 here: the quotient has 63+ bits */
    int drop = bits - 53;
    uint64_t mant = (uint64_t)(x >> drop);
    unsigned __int128 rem = x & (((unsigned __int128)1 << drop) - 1);
    unsigned __int128 half = (unsigned __int128)1 << (drop - 1);
    if (rem > half || (rem == half && (sticky || (mant & 1))))
        mant++; /* 2^53 at most: still exact */
    return ldexp((double)mant, bexp + drop);
}

/* m * 10^e10 correctly rounded, for m < 2^64 and |e10| <= 19, by exact integer arithmetic: the
 * 17-19 digit decimals (doubles printed in full) that the float fast path cannot take went to
 * strtod, at ten times the cost. */
static double exact_decimal(uint64_t m, int e10) {
    static const uint64_t p10[] = {1ull,
                                   10ull,
                                   100ull,
                                   1000ull,
                                   10000ull,
                                   100000ull,
                                   1000000ull,
                                   10000000ull,
                                   100000000ull,
                                   1000000000ull,
                                   10000000000ull,
                                   100000000000ull,
                                   1000000000000ull,
                                   10000000000000ull,
                                   100000000000000ull,
                                   1000000000000000ull,
                                   10000000000000000ull,
                                   100000000000000000ull,
                                   1000000000000000000ull,
                                   10000000000000000000ull};
    if (m == 0)
        return 0;
    if (e10 >= 0)
        return round_u128((unsigned __int128)m * p10[e10], 0, false);
    /* m * 2^s / 10^-e10 with m * 2^s just below 2^127: a quotient of 63 bits or more */
    int s = 63 + __builtin_clzll(m);
    unsigned __int128 num = (unsigned __int128)m << s;
    uint64_t d = p10[-e10];
    return round_u128(num / d, -s, num % d != 0);
}
#endif

/* Clinger's fast path: a decimal of at most 19 significant digits whose value m * 10^e has
 * m <= 2^53 and |e| <= 22 is one correctly rounded IEEE multiplication or division of two exact
 * doubles, so it equals strtod's answer. Most numbers in real files qualify; longer mantissas with
 * |e| <= 19 take exact_decimal; the rest (and any spelling this does not know) go to strtod. */
/* The value of a decimal read as its significant digits m (at most 19) and exponent e10, for
 * fast_decimal and the one-pass classifier (so both give the same double): false when neither
 * fast way is exact. */
static inline bool decimal_value(uint64_t m, int e10, bool neg, double *out) {
    static const double p10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                 1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    if (m > (1ull << 53) || e10 < -22 || e10 > 22) {
#ifdef __SIZEOF_INT128__
        if (e10 >= -19 && e10 <= 19) {
            double v = exact_decimal(m, e10);
            *out = neg ? -v : v;
            return true;
        }
#endif
        return false;
    }
    double v = (double)m;
    v = e10 < 0 ? v / p10[-e10] : v * p10[e10];
    *out = neg ? -v : v;
    return true;
}

static bool fast_decimal(const char *p, size_t len, double *out) {
    size_t i = 0;
    bool neg = false;
    if (i < len && (p[i] == '+' || p[i] == '-'))
        neg = p[i++] == '-';
    uint64_t m = 0;
    int sig = 0, e10 = 0;
    bool any = false;
    for (; i < len && p[i] >= '0' && p[i] <= '9'; i++) {
        any = true;
        if (m || p[i] != '0') {
            if (++sig > 19)
                return false;
            m = m * 10 + (uint64_t)(p[i] - '0');
        }
    }
    if (i < len && p[i] == '.') {
        for (i++; i < len && p[i] >= '0' && p[i] <= '9'; i++) {
            any = true;
            if (m || p[i] != '0') {
                if (++sig > 19)
                    return false;
                m = m * 10 + (uint64_t)(p[i] - '0');
            }
            e10--;
        }
    }
    if (!any)
        return false;
    if (i < len && (p[i] == 'e' || p[i] == 'E')) {
        i++;
        bool eneg = false;
        if (i < len && (p[i] == '+' || p[i] == '-'))
            eneg = p[i++] == '-';
        size_t start = i;
        int x = 0;
        for (; i < len && p[i] >= '0' && p[i] <= '9'; i++) {
            if (x > 10000)
                return false;
            x = x * 10 + (p[i] - '0');
        }
        if (i == start)
            return false;
        e10 += eneg ? -x : x;
    }
    if (i != len)
        return false;
    return decimal_value(m, e10, neg, out);
}

bool aq_csv_parse_float(const char *p, size_t len, double *out) {
    trim(&p, &len);
    if (len == 0)
        return false;
    const char *s = p;
    size_t n = len;
    bool neg = false;
    if (s[0] == '+' || s[0] == '-') {
        neg = s[0] == '-';
        s++;
        n--;
    }
    if (ieq(s, n, "inf") || ieq(s, n, "infinity")) {
        *out = neg ? -INFINITY : INFINITY;
        return true;
    }
    if (is_nan_word(s, n)) {
        *out = NAN;
        return true;
    }
    if (!float_syntax(p, len))
        return false;
    if (fast_decimal(p, len, out))
        return true;
    char stackbuf[128];
    char *buf = len < sizeof stackbuf ? stackbuf : malloc(len + 1);
    if (!buf)
        return false;
    memcpy(buf, p, len);
    buf[len] = 0;
    char *end;
    errno = 0;
    double v = strtod(buf, &end);
    /* out of a double's range (1e400 -> inf, 1e-400 -> 0): the value would be lost, so text;
     * a subnormal result (ERANGE too) is the nearest double like any other */
    bool ok = end == buf + len && !(errno == ERANGE && (isinf(v) || v == 0));
    if (buf != stackbuf)
        free(buf);
    if (ok)
        *out = v;
    return ok;
}

static int days_in_month(int64_t y, int m) {
    static const int d[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return 29;
    return d[m - 1];
}

/* Howard Hinnant's days_from_civil: exact for the proleptic Gregorian calendar. */
static int64_t days_from_civil(int64_t y, int m, int d) {
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d) {
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static bool num(const char *p, size_t len, size_t *i, size_t w, int *out) {
    if (*i + w > len)
        return false;
    int v = 0;
    for (size_t k = 0; k < w; k++) {
        char c = p[*i + k];
        if (!digit(c))
            return false;
        v = v * 10 + (c - '0');
    }
    *i += w;
    *out = v;
    return true;
}

bool aq_csv_parse_time(const char *p, size_t len, int64_t *ms) {
    uint8_t shape;
    return aq_csv_parse_time_shape(p, len, ms, &shape);
}

bool aq_csv_time_shape_ok(uint8_t s) {
    if (s == 0)
        return true;
    if (!(s & AQ_CSV_TS_TIME))
        return false;
    return !(s & AQ_CSV_TS_TRIM) || ((s & AQ_CSV_TS_SEC) && !(s & AQ_CSV_TS_FRAC_MASK));
}

bool aq_csv_parse_time_shape(const char *p, size_t len, int64_t *ms, uint8_t *shape) {
    trim(&p, &len);
    uint8_t sh = 0;
    size_t i = 0;
    int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0, frac = 0;
    if (!num(p, len, &i, 4, &y) || i >= len || p[i++] != '-' || !num(p, len, &i, 2, &mo) ||
        i >= len || p[i++] != '-' || !num(p, len, &i, 2, &d))
        return false;
    if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo))
        return false;
    if (i < len) {
        if (p[i] != ' ' && p[i] != 'T')
            return false;
        sh |= AQ_CSV_TS_TIME | (p[i] == 'T' ? AQ_CSV_TS_T : 0);
        i++;
        if (!num(p, len, &i, 2, &h) || i >= len || p[i++] != ':' || !num(p, len, &i, 2, &mi))
            return false;
        if (i < len && p[i] == ':') {
            i++;
            if (!num(p, len, &i, 2, &s))
                return false;
            sh |= AQ_CSV_TS_SEC;
            if (i < len && p[i] == '.') {
                i++;
                size_t nd = 0;
                int scale = 100;
                while (i < len && digit(p[i])) {
                    if (nd < 3) {
                        frac += (p[i] - '0') * scale;
                        scale /= 10;
                    }
                    nd++;
                    i++;
                }
                if (nd == 0 || nd > 3)
                    return false;
                sh |= AQ_CSV_TS_FRAC(nd);
            }
        }
        if (i < len && p[i] == 'Z') {
            sh |= AQ_CSV_TS_Z;
            i++;
        }
        if (i != len || h > 23 || mi > 59 || s > 59)
            return false;
    }
    *ms = ((days_from_civil(y, mo, d) * 24 + h) * 60 + mi) * 60000 + (int64_t)s * 1000 + frac;
    *shape = sh;
    return true;
}

/* aq_csv_classify past a field's leading digits (p[start..i), value v, i < len): a time, a
 * decimal or -1, undecided (the chain decides). Out of line, so that integers, the common case, do
 * not pay for saving the registers this needs. */
static __attribute__((noinline)) int classify_past_digits(const char *p, size_t len, size_t i,
                                                          size_t start, uint64_t v, int64_t *iv,
                                                          double *dv) {
    char c0 = p[0];
    size_t nd = i - start;
    if (nd == 4 && p[i] == '-' && start == 0) { /* 2015-01-02...: only a time can be */
        uint8_t sh;
        if (!aq_csv_parse_time_shape(p, len, iv, &sh))
            return AQ_CSV_V_TEXT;
        *dv = sh;
        return AQ_CSV_V_TIME;
    }
    if (p[i] == '.' && nd <= 18) {
        /* the integer part is read: go on with the fraction here rather than read the field
         * again in fast_decimal, in the same steps (its significant digits: none for a "0"
         * part, since no other part starts with 0 here) */
        uint64_t m = v;
        int sig = v ? (int)nd : 0, e10 = 0;
        bool any = nd > 0;
        size_t k = i + 1;
        for (; k < len && digit(p[k]); k++) {
            any = true;
            if (m || p[k] != '0') {
                if (++sig > 19)
                    return -1;
                m = m * 10 + (uint64_t)(p[k] - '0');
            }
            e10--;
        }
        if (k == len) {
            if (any && decimal_value(m, e10, c0 == '-', dv))
                return AQ_CSV_V_FLOAT;
            return -1;
        }
    }
    if (fast_decimal(p, len, dv))
        return AQ_CSV_V_FLOAT;
    return -1;
}

/* Digits with an optional sign (and blanks around): an integer however long. */
static bool int_syntax(const char *p, size_t len) {
    trim(&p, &len);
    size_t i = len && (p[0] == '+' || p[0] == '-');
    if (i == len)
        return false;
    for (; i < len; i++)
        if (!digit(p[i]))
            return false;
    return true;
}

/* The fields aq_csv_classify does not decide at once: the chain. Kept out of it so the
 * common case does not pay for saving the registers this one needs. */
static __attribute__((noinline)) aq_csv_vkind classify_chain(const char *p, size_t len, bool quoted,
                                                             const aq_csv_na *na, int64_t *iv,
                                                             double *dv) {
    /* Only a digit, a sign, a point, a blank or the words inf and nan start a number or a time:
     * other text (names, codes, free text) needs no parser, only the NA list. */
    if (len) {
        char c0 = p[0];
        if (!digit(c0) && c0 != '+' && c0 != '-' && c0 != '.' && c0 != ' ' && c0 != '\t' &&
            (c0 | 0x20) != 'i' && (c0 | 0x20) != 'n')
            return aq_csv_is_na(p, len, quoted, na) ? AQ_CSV_V_NA : AQ_CSV_V_TEXT;
    }
    if (aq_csv_is_na(p, len, quoted, na))
        return AQ_CSV_V_NA;
    const char *t = p;
    size_t tl = len;
    trim(&t, &tl);
    if (leading_zero(t, tl) && !aq_csv_parse_time(t, tl, iv))
        return AQ_CSV_V_TEXT;
    if (aq_csv_parse_int(p, len, iv)) {
        *dv = (double)*iv;
        return AQ_CSV_V_INT;
    }
    /* beyond int64 a double would keep only the first 17 digits of an identifier */
    if (int_syntax(p, len))
        return AQ_CSV_V_TEXT;
    if (aq_csv_parse_float(p, len, dv))
        return AQ_CSV_V_FLOAT;
    uint8_t sh;
    if (aq_csv_parse_time_shape(p, len, iv, &sh)) {
        *dv = sh;
        return AQ_CSV_V_TIME;
    }
    return AQ_CSV_V_TEXT;
}

/* classify_past_digits, then the chain when it does not decide. */
static __attribute__((noinline)) aq_csv_vkind classify_rest(const char *p, size_t len,
                                                            const aq_csv_na *na, size_t i,
                                                            size_t start, uint64_t v, int64_t *iv,
                                                            double *dv) {
    int k = classify_past_digits(p, len, i, start, v, iv, dv);
    return k >= 0 ? (aq_csv_vkind)k : classify_chain(p, len, false, na, iv, dv);
}

/* The common case in one pass: an unquoted field that starts like a number and that no NA entry
 * starts like. Answers what the full chain would (NA, int, float, time in that order); every
 * field it does not decide takes the full chain. Integers are decided here; every other way
 * out is a tail call, so the common case saves no registers. */
aq_csv_vkind aq_csv_classify(const char *p, size_t len, bool quoted, const aq_csv_na *na,
                             int64_t *iv, double *dv) {
    if (quoted || !len)
        return classify_chain(p, len, quoted, na, iv, dv);
    char c0 = p[0];
    if (!digit(c0) && c0 != '-' && c0 != '+' && c0 != '.')
        return classify_chain(p, len, quoted, na, iv, dv);
    if (na->first[(uint8_t)c0 >> 6] >> ((uint8_t)c0 & 63) & 1)
        return classify_chain(p, len, quoted, na, iv, dv); /* could be NA: the list decides */
    /* p[0] is no space, so the field is trimmed at the front; a space at the end stops every
     * loop below short of len, which leaves the field to the full chain */
    size_t i = c0 == '-' || c0 == '+';
    size_t start = i;
    uint64_t v = 0;
    while (i < len && digit(p[i]))
        v = v * 10 + (uint64_t)(p[i++] - '0');
    size_t nd = i - start;
    if (nd > 1 && p[start] == '0' && !(nd == 4 && i < len && p[i] == '-'))
        return AQ_CSV_V_TEXT;             /* 007, -01, 00.5: a code, kept as written */
    if (i == len && nd > 0 && nd <= 18) { /* 18 digits cannot overflow */
        *iv = c0 == '-' ? -(int64_t)v : (int64_t)v;
        *dv = (double)*iv;
        return AQ_CSV_V_INT;
    }
    if (i < len && p[i] == '.' && nd > 0 && len - start <= 16) {
        /* a plain decimal of at most 15 digits (prices, measures): its digits as an integer
         * below 2^53 over a power of ten up to 1e15, which decimal_value divides exactly as
         * classify_past_digits would, without the calls there; anything longer or followed by
         * more (an exponent, a blank) is left to it */
        size_t k = i + 1;
        uint64_t m = v;
        while (k < len && digit(p[k]) && k - i + nd <= 15)
            m = m * 10 + (uint64_t)(p[k++] - '0');
        if (k == len && k > i + 1 && decimal_value(m, -(int)(k - i - 1), c0 == '-', dv))
            return AQ_CSV_V_FLOAT;
    }
    if (i == len) /* all digits but too many for the loop above: parse_int decides */
        return classify_chain(p, len, quoted, na, iv, dv);
    return classify_rest(p, len, na, i, start, v, iv, dv);
}

aq_csv_vkind aq_csv_classify_dec(const char *p, size_t len, bool quoted, const aq_csv_na *na,
                                 char dec, int64_t *iv, double *dv) {
    if (dec != ',' || len == 0 || len > 64)
        return aq_csv_classify(p, len, quoted, na, iv, dv);
    const char *c = memchr(p, ',', len);
    if (!c || memchr(c + 1, ',', len - (size_t)(c - p) - 1) || memchr(p, '.', len))
        return aq_csv_classify(p, len, quoted, na, iv, dv);
    char buf[64];
    memcpy(buf, p, len);
    buf[c - p] = '.';
    aq_csv_vkind k = aq_csv_classify(buf, len, quoted, na, iv, dv);
    /* only a number takes the point: a comma in text or a time stays what it was */
    return k == AQ_CSV_V_FLOAT ? k : aq_csv_classify(p, len, quoted, na, iv, dv);
}

int aq_csv_format_double(double v, char *buf) {
    if (isinf(v))
        return snprintf(buf, 32, "%s", v < 0 ? "-Inf" : "Inf");
    if (isnan(v))
        return snprintf(buf, 32, "NaN");
    int n = 0;
    for (int prec = 15; prec <= 17; prec++) {
        n = snprintf(buf, 32, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    /* "3" would read back as an integer (and "-0" as +0): keep floats visibly floats */
    if (!strpbrk(buf, ".e")) {
        buf[n++] = '.';
        buf[n++] = '0';
        buf[n] = 0;
    }
    return n;
}

int aq_csv_format_time_shape(int64_t ms, uint8_t sh, char *buf) {
    if (!(sh & AQ_CSV_TS_TIME))
        return aq_csv_format_time(ms, buf);
    int64_t days = ms >= 0 ? ms / 86400000 : -((-ms + 86399999) / 86400000);
    int64_t rem = ms - days * 86400000;
    int64_t y;
    int m, d;
    civil_from_days(days, &y, &m, &d);
    int n = snprintf(buf, 40, "%04" PRId64 "-%02d-%02d", y, m, d);
    if (rem == 0 && (sh & AQ_CSV_TS_DATES))
        return n;
    n += snprintf(buf + n, (size_t)(40 - n), "%c%02d:%02d", sh & AQ_CSV_TS_T ? 'T' : ' ',
                  (int)(rem / 3600000), (int)(rem / 60000 % 60));
    if (sh & AQ_CSV_TS_SEC)
        n += snprintf(buf + n, (size_t)(40 - n), ":%02d", (int)(rem / 1000 % 60));
    int fd = AQ_CSV_TS_FRAC_OF(sh);
    if (sh & AQ_CSV_TS_TRIM) /* as many digits as the value needs */
        for (int f = (int)(rem % 1000), k = 3; f; k--, f /= 10)
            if (f % 10) {
                fd = k;
                break;
            }
    if (fd) {
        char f[8];
        snprintf(f, sizeof f, "%03d", (int)(rem % 1000));
        n += snprintf(buf + n, (size_t)(40 - n), ".%.*s", fd, f);
    }
    if (sh & AQ_CSV_TS_Z)
        buf[n++] = 'Z', buf[n] = 0;
    return n;
}

int aq_csv_format_time(int64_t ms, char *buf) {
    int64_t days = ms >= 0 ? ms / 86400000 : -((-ms + 86399999) / 86400000);
    int64_t rem = ms - days * 86400000;
    int64_t y;
    int m, d;
    civil_from_days(days, &y, &m, &d);
    int h = (int)(rem / 3600000), mi = (int)(rem / 60000 % 60), s = (int)(rem / 1000 % 60),
        f = (int)(rem % 1000);
    if (rem == 0)
        return snprintf(buf, 40, "%04" PRId64 "-%02d-%02d", y, m, d);
    if (f == 0)
        return snprintf(buf, 40, "%04" PRId64 "-%02d-%02d %02d:%02d:%02d", y, m, d, h, mi, s);
    return snprintf(buf, 40, "%04" PRId64 "-%02d-%02d %02d:%02d:%02d.%03d", y, m, d, h, mi, s, f);
}
