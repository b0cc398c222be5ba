/*
 * TIFF LZW encoder (compression 5) for geotessera's GeoTIFF export.
 *
 * With a table of 4094 codes (small = CODE_LIMIT) the bit stream is the one libtiff writes,
 * byte for byte: codes of 9 to 12 bits, MSB first, the "early change" code-width switch, a
 * Clear code at the start, when the table fills (4094 entries) and when the compression ratio
 * stops improving (checked every 10,000 input bytes), an EOI code at the end. With a smaller
 * table the Clears come sooner where that makes fewer bits (see lzw_begin); any decoder reads
 * both. It differs from libtiff in how it finds a string: a direct table
 * child[code * 256 + byte] (2 MB, cleared entry by entry) instead of libtiff's open-addressing
 * hash, fewer branches per code, and runs of a repeated 4-byte word (zero padding, NaN nodata)
 * taken a known string at a time, which makes it about 2.5 times faster on float32 embeddings.
 * The encoder runs without the GIL, so tiles encode in parallel threads.
 */
#ifdef LZW_CORE_ONLY /* the encoder alone, for native tests (sanitizers, other byte orders) */
#include <stddef.h>
typedef ptrdiff_t Py_ssize_t;
#else
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#endif
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define BITS_MIN 9
#define CODE_CLEAR 256
#define CODE_EOI 257
#define CODE_FIRST 258
#define CODE_LIMIT 4094 /* table full: libtiff's CODE_MAX - 1 */
/* Bytes per code over a table's life at or above which the next table may grow to CODE_LIMIT
 * (long strings: runs, water, padding); below it, a table of at most `small` codes. */
#define LONG_STRINGS 8
/* Tables of the size not preferred tried now and then, to see whether the data changed: a large
 * one after this many small ones, a small one after this many large ones. */
#define PROBE_LARGE_AFTER 1024
#define PROBE_SMALL_AFTER 32
#define LARGE_MARGIN 16
#define SMALL_MIN 384 /* the smallest table lzw_bound allows for */
#define CHECK_GAP 10000 /* input bytes between compression-ratio checks */
#define N_CHILD (4096u * 256u)

#if defined(__GNUC__) || defined(__clang__)
#define UNLIKELY(x) __builtin_expect(!!(x), 0)
#define NOINLINE __attribute__((noinline))
#elif defined(_MSC_VER)
#define UNLIKELY(x) (x)
#define NOINLINE __declspec(noinline)
#else
#define UNLIKELY(x) (x)
#define NOINLINE
#endif

typedef struct {
    uint16_t *child; /* child[(code << 8) | byte]: the code of that string, 0 when none */
    uint32_t *used;  /* used[code]: where in child that code sits (to clear the table) */
    uint16_t *runs;  /* runs[phase * 4096 + k]: the code of the k bytes of the run's word from phase */
} lzw_table;

/* The encoder's state. The hot loop keeps it in local variables (LOAD/SAVE around the calls to
 * the rare paths, which take it here).
 * libtiff counts input bytes and output bits from each Clear (the Clear's own bits included)
 * and checks the compression ratio when the input count reaches its checkpoint, which a Clear
 * does not reset. Here: base is the input position of the last Clear, cp the absolute position
 * of the next check, op_base and nb_base the output position just before the last Clear. */
typedef struct {
    const uint8_t *src;
    Py_ssize_t n, i, base, cp;
    uint8_t *op, *op_base;
    uint64_t acc;     /* pending output bits, newest lowest */
    unsigned nb;      /* how many of them (< 32 between codes) */
    unsigned nb_base, nbits, free_ent, ent; /* codes of nbits bits reach (1 << nbits) - 1 */
    unsigned run_len[4]; /* per phase, the longest string of the run's word known (0: none yet) */
    uint32_t run_word;    /* the word those strings repeat (its first byte at phase 0) */
    unsigned event;   /* free_ent at which the code width grows or the table is full */
    unsigned limit;   /* free_ent at which this table is full: a Clear */
    unsigned small;   /* limit of a table after one of short strings (CODE_LIMIT: libtiff's stream) */
    unsigned long rate_small, rate_large; /* output bits per input byte x 256 of recent small and
                                           * large tables of short strings (0: none yet) */
    unsigned since_probe; /* tables since the size not preferred was last tried */
    int started;      /* the first byte was fed (the leading Clear is out) */
    long ratio;
    uint8_t *dst;     /* where the stream starts */
    lzw_table *t;
} lzw_state;

/* Largest output for n input bytes: one code of at most 12 bits per byte (at most 9 bits with a
 * table of under 512 codes; its Clear may take one bit more when the table has 2**k codes), a
 * Clear at most every 126 codes of 9 bits, 254 of 10, 766 of 11 or 1,790 of 12 (small >=
 * SMALL_MIN) and every 10,000 bytes, then the last code, a Clear, EOI, padding and 4 bytes of
 * slack for the 32-bit stores. */
static Py_ssize_t lzw_bound(Py_ssize_t n) { return n + n / 2 + n / 512 + 32; }

static inline uint64_t load64(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

/* Most significant byte first on any host (compilers make this one store on either byte order;
 * a swap then memcpy wrote the bytes of each word reversed on big-endian hosts). */
static inline void put32be(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Append a code of nbits bits: always store the top 32 pending bits, keep them when complete. */
#define PUT_BITS(op, acc, nb, nbits, code)                         \
    do {                                                           \
        unsigned full_;                                            \
        (acc) = ((acc) << (nbits)) | (uint64_t)(code);             \
        (nb) += (nbits);                                           \
        put32be((op), (uint32_t)((acc) >> (((nb) - 32) & 63)));    \
        full_ = (nb) >> 5;                                         \
        (op) += full_ * 4;                                         \
        (nb) -= full_ * 32;                                        \
    } while (0)

static void put(lzw_state *s, unsigned code) { PUT_BITS(s->op, s->acc, s->nb, s->nbits, code); }

/* free_ent at which something is due: the code width grows, or the table (of limit codes) is full */
static unsigned next_event(unsigned nbits, unsigned limit) { return 1u << nbits < limit ? 1u << nbits : limit; }

static void clear_table(lzw_state *s) {
    for (unsigned k = CODE_FIRST; k < s->free_ent; k++) s->t->child[s->t->used[k]] = 0;
}

/* The size of the next table, from what the one just ended held (see lzw_begin). */
static unsigned next_limit(lzw_state *s) {
    long in = (long)(s->i - s->base), codes = (long)(s->free_ent - CODE_FIRST);
    long bits = (long)(s->op - s->op_base) * 8 + (long)s->nb - (long)s->nb_base;
    unsigned long rate;
    int large_wins;

    if (s->small == CODE_LIMIT || in >= LONG_STRINGS * codes) return CODE_LIMIT; /* libtiff; runs */
    rate = in > 0 ? (unsigned long)((bits << 8) / in) : 0;
    if (s->limit == s->small) /* a running mean over small tables, which are short */
        s->rate_small = s->rate_small ? (7 * s->rate_small + rate) / 8 : rate;
    else
        s->rate_large = rate;
    /* large tables are slower: they must make 1/LARGE_MARGIN fewer bits to be preferred */
    large_wins = s->rate_large != 0 && s->rate_large + s->rate_large / LARGE_MARGIN < s->rate_small;
    if (++s->since_probe >= (large_wins ? PROBE_SMALL_AFTER : PROBE_LARGE_AFTER)) {
        s->since_probe = 0;
        return large_wins ? s->small : CODE_LIMIT;
    }
    return large_wins ? CODE_LIMIT : s->small;
}

static void restart(lzw_state *s) {
    s->limit = next_limit(s);
    clear_table(s);
    s->ratio = 0;
    s->base = s->i;
    s->free_ent = CODE_FIRST;
    s->op_base = s->op;
    s->nb_base = s->nb;
    put(s, CODE_CLEAR);
    s->nbits = BITS_MIN;
    s->event = next_event(BITS_MIN, s->limit);
    memset(s->run_len, 0, sizeof s->run_len);
}

/* What libtiff does after adding a code, when something is due: a Clear when the table is
 * full, one more bit per code when the codes outgrow the width ("early change"), or at the
 * checkpoint, a Clear if the compression ratio stopped improving. */
static void after_code(lzw_state *s) {
    if (s->free_ent == s->limit) {
        Py_ssize_t keep = s->cp - s->base;
        /* a table of 2**k codes: the decoder's, one entry behind, has 2**k - 1 and reads the
         * Clear with one more bit (libtiff's 4094 never is) */
        if (s->free_ent >= 1u << s->nbits) s->nbits++;
        restart(s);
        s->cp = s->base + keep;
    } else if (s->free_ent >= 1u << s->nbits) {
        s->nbits++;
        s->event = next_event(s->nbits, s->limit);
    } else if (s->i >= s->cp) {
        long incount = (long)(s->i - s->base), rat;
        long outcount = (long)(s->op - s->op_base) * 8 + (long)s->nb - (long)s->nb_base;
        Py_ssize_t keep = incount + CHECK_GAP;
        if (incount > 0x007fffff) {
            rat = outcount >> 8;
            rat = rat == 0 ? 0x7fffffff : incount / rat;
        } else {
            rat = (incount << 8) / outcount;
        }
        if (rat <= s->ratio)
            restart(s);
        else
            s->ratio = rat;
        s->cp = s->base + keep;
    }
}

/* Emit ent, the longest known string, and learn it extended by idx's byte (rare paths). */
static void learn(lzw_state *s, unsigned idx) {
    put(s, s->ent);
    s->t->child[idx] = (uint16_t)s->free_ent;
    s->t->used[s->free_ent] = idx;
    s->free_ent++;
    if (s->free_ent >= s->event || s->i >= s->cp) after_code(s);
}

/* The bytes at i - 1 (ent, a string's first byte) and on repeat a 4-byte word for at least 16
 * bytes: zeros (padding, zero scales) or NaN (nodata: water). Take the run whole, a known
 * string at a time, as the byte loop would. For each phase of the word (the offset of a
 * string's first byte in it) the codes of the strings of 1, 2, 3, ... of its bytes are kept,
 * found in the table when first needed: the table is prefix-closed, so the longest known one
 * is found by walking child[] from the shortest. */
static NOINLINE void periodic_run(lzw_state *s) {
    const uint8_t *src = s->src;
    uint16_t *child = s->t->child, *runs = s->t->runs;
    Py_ssize_t start = s->i - 1, j, left;
    uint8_t w[4];
    uint32_t word;
    unsigned phase = 0, k = 1; /* ent is the code of the k bytes of the word from phase */
    uint64_t pattern;

    memcpy(w, src + start, 4);
    memcpy(&word, w, 4);
    if (word != s->run_word) { /* another word: its strings are looked up afresh */
        memset(s->run_len, 0, sizeof s->run_len);
        s->run_word = word;
    }
    pattern = load64(src + start);
    j = start + 8;
    while (s->n - j >= 8 && load64(src + j) == pattern) j += 8;
    while (j < s->n && src[j] == src[j - 4]) j++;
    left = j - s->i; /* run bytes after ent's */
    for (;;) {
        uint16_t *chain = runs + phase * 4096u;
        unsigned known = s->run_len[phase], z;
        if (known == 0) {
            chain[1] = w[phase];
            known = 1;
        }
        while (known < CODE_LIMIT && (z = child[((unsigned)chain[known] << 8) | w[(phase + known) & 3]]) != 0)
            chain[++known] = (uint16_t)z;
        s->run_len[phase] = known;
        if ((Py_ssize_t)known >= (Py_ssize_t)k + left) { /* the run ends within a known string */
            s->ent = chain[k + left];
            s->i += left;
            return;
        }
        /* the longest known string, then the next byte of the run is new: emit, learn */
        {
            unsigned c = w[(phase + known) & 3];
            s->i += known - k + 1;
            left -= known - k + 1;
            s->ent = chain[known];
            learn(s, ((unsigned)s->ent << 8) | c); /* may Clear the table: run_len reset */
            s->ent = c;
            phase = (phase + known) & 3;
            k = 1;
        }
        if (left == 0) return;
    }
}

/* A stream is encoded by lzw_begin, then lzw_feed for each piece of input in turn (of any
 * length: the output does not depend on where the input is cut), then lzw_finish. Input
 * positions (i, base, cp) count from the start of the piece being fed.
 *
 * small: the size (in codes, SMALL_MIN <= small <= CODE_LIMIT) at which a table of short
 * strings is cleared. CODE_LIMIT writes libtiff's stream. Below it, the first table is cleared
 * at small codes; a table after one of long strings (runs: LONG_STRINGS bytes per code or
 * more) may grow to CODE_LIMIT; after one of short strings, the size whose recent tables made
 * fewer bits per byte is used, and the other is tried again after PROBE_LARGE_AFTER small or
 * PROBE_SMALL_AFTER large tables. Any TIFF LZW decoder reads the result: a Clear may come
 * anywhere, and the code width follows the table. On float32 embeddings with per-pixel
 * scales a table of 510 codes (9-bit codes only) makes a smaller stream than libtiff's and
 * stays in the L2 cache; runs of water, and values that repeat across pixels (one scale for
 * many), keep the large table, which suits them. */
static void lzw_begin(lzw_state *s, uint8_t *dst, lzw_table *t, unsigned small) {
    memset(s, 0, sizeof *s);
    s->dst = dst;
    s->op = dst;
    s->op_base = dst;
    s->nbits = BITS_MIN;
    s->free_ent = CODE_FIRST;
    s->small = small;
    s->limit = small;
    s->event = next_event(BITS_MIN, small);
    s->cp = CHECK_GAP;
    s->t = t;
}

static void lzw_feed(lzw_state *s, const uint8_t *src, Py_ssize_t n) {
    uint16_t *child = s->t->child;
    uint32_t *used = s->t->used;
    /* the hot state, in registers */
    Py_ssize_t i = 0, cp = s->cp;
    uint8_t *op = s->op;
    uint64_t acc = s->acc;
    unsigned nb = s->nb, nbits = s->nbits, free_ent = s->free_ent, event = s->event, ent = s->ent;
#define SAVE()                                                     \
    do {                                                           \
        s->i = i; s->cp = cp; s->op = op; s->acc = acc; s->nb = nb; \
        s->nbits = nbits; s->free_ent = free_ent; s->event = event; s->ent = ent; \
    } while (0)
#define LOAD()                                                     \
    do {                                                           \
        i = s->i; cp = s->cp; op = s->op; acc = s->acc; nb = s->nb; \
        nbits = s->nbits; free_ent = s->free_ent; event = s->event; ent = s->ent; \
    } while (0)

    if (n <= 0) return;
    s->src = src;
    s->n = n;
    if (!s->started) {
        PUT_BITS(op, acc, nb, nbits, CODE_CLEAR);
        ent = src[i++];
        s->started = 1;
    }
    while (i < n) {
        unsigned c = src[i++];
        unsigned idx = (ent << 8) | c;
        unsigned code = child[idx];
        if (code) { /* the string goes on */
            ent = code;
            continue;
        }
        PUT_BITS(op, acc, nb, nbits, ent); /* emit the longest known string, learn it + c */
        child[idx] = (uint16_t)free_ent;
        used[free_ent] = idx;
        ent = c;
        free_ent++;
        if (UNLIKELY(free_ent >= event || i >= cp || c == 0)) {
            SAVE();
            if (free_ent >= event || i >= cp) after_code(s);
            if (c == 0 && n - i >= 15 && load64(src + i - 1) == load64(src + i + 3) &&
                load64(src + i + 3) == load64(src + i + 7))
                periodic_run(s);
            LOAD();
        }
    }
    SAVE();
    s->i = 0; /* the next piece starts at 0 */
    s->base -= n;
    s->cp -= n;
#undef SAVE
#undef LOAD
}

/* The last string, EOI and the padding bits; returns the length of the stream. */
static Py_ssize_t lzw_finish(lzw_state *s) {
    if (s->started) {
        put(s, s->ent);
        s->free_ent++;
        if (s->free_ent >= 1u << s->nbits) s->nbits++; /* before the Clear too (see after_code) */
        if (s->free_ent == s->limit) {
            put(s, CODE_CLEAR);
            s->nbits = BITS_MIN;
        }
        s->free_ent--;
        clear_table(s);
    }
    put(s, CODE_EOI);
    while (s->nb >= 8) {
        s->nb -= 8;
        *s->op++ = (uint8_t)(s->acc >> s->nb);
    }
    if (s->nb > 0) *s->op++ = (uint8_t)(s->acc << (8 - s->nb));
    return s->op - s->dst;
}

static Py_ssize_t lzw_encode(const uint8_t *src, Py_ssize_t n, uint8_t *dst, lzw_table *t, unsigned small) {
    lzw_state st;
    lzw_begin(&st, dst, t, small);
    lzw_feed(&st, src, n);
    return lzw_finish(&st);
}

/* The encoder's tables (about 2.1 MB); the core-only build's tests use these too. */
static int alloc_table(lzw_table *table) {
    table->child = calloc(N_CHILD, sizeof(uint16_t));
    table->used = malloc(sizeof(uint32_t) * 4096);
    table->runs = malloc(sizeof(uint16_t) * 4 * 4096);
    return table->child != NULL && table->used != NULL && table->runs != NULL;
}

static void free_table(lzw_table *table) {
    free(table->child);
    free(table->used);
    free(table->runs);
}

#ifndef LZW_CORE_ONLY
PyDoc_STRVAR(encode_doc,
             "encode(data, small=4094, /)\n--\n\n"
             "Encode a bytes-like object as one TIFF LZW segment (a tile or strip); returns bytes.\n"
             "small: codes at which a table of short strings is cleared (384-4094; 4094 writes\n"
             "libtiff's stream byte for byte). The GIL is released while encoding.");

/* The optional argument small (NULL: CODE_LIMIT), checked whole: the "I" format would take
 * 2**32 + 510 as 510. */
static int check_small(PyObject *obj, unsigned *small) {
    int overflow;
    long long v;
    if (obj == NULL) {
        *small = CODE_LIMIT;
        return 1;
    }
    v = PyLong_AsLongLongAndOverflow(obj, &overflow);
    if (v == -1 && PyErr_Occurred()) return 0;
    if (overflow || v < SMALL_MIN || v > CODE_LIMIT) {
        PyErr_Format(PyExc_ValueError, "small must be %d to %d codes, not %R", SMALL_MIN, CODE_LIMIT, obj);
        return 0;
    }
    *small = (unsigned)v;
    return 1;
}

static PyObject *encode(PyObject *module, PyObject *args) {
    Py_buffer view;
    lzw_table table;
    PyObject *arg, *out, *small_obj = NULL;
    Py_ssize_t written;
    unsigned small;

    (void)module;
    if (!PyArg_ParseTuple(args, "O|O", &arg, &small_obj) || !check_small(small_obj, &small)) return NULL;
    if (PyObject_GetBuffer(arg, &view, PyBUF_C_CONTIGUOUS) < 0) return NULL;
    if (view.len > PY_SSIZE_T_MAX / 2) { /* lzw_bound would overflow (32-bit builds) */
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "input too large for one LZW segment");
        return NULL;
    }
    out = PyBytes_FromStringAndSize(NULL, lzw_bound(view.len));
    if (!alloc_table(&table) || out == NULL) {
        free_table(&table);
        PyBuffer_Release(&view);
        if (out == NULL) return NULL;
        Py_DECREF(out);
        return PyErr_NoMemory();
    }
    Py_BEGIN_ALLOW_THREADS
    written = lzw_encode((const uint8_t *)view.buf, view.len, (uint8_t *)PyBytes_AS_STRING(out), &table, small);
    Py_END_ALLOW_THREADS
    free_table(&table);
    PyBuffer_Release(&view);
    if (_PyBytes_Resize(&out, written) < 0) return NULL;
    return out;
}

/* The float32 NaN numpy writes for nodata (np.float32(np.nan)): the same bytes as GDAL's file. */
static const uint32_t NAN_BITS = 0x7fc00000u;

/* Dequantise pixels c0..c1-1 of row r of a tile from int8 (h, w, n) with per-pixel float32
 * scales (h, w), as geotessera.tiles.dequantize does: float32(q) * scale; a pixel whose scale
 * is not finite, or finite outside [0, 1) (counted), is NaN; a pixel past (h, w) is zeros
 * (GDAL's padding). Writes (c1 - c0) * nout floats to out; returns the pixels counted. */
static long dequantize_span(const Py_buffer *q, const Py_buffer *s, const int32_t *bands, Py_ssize_t nout,
                            Py_ssize_t r, Py_ssize_t c0, Py_ssize_t c1, float *out) {
    Py_ssize_t h = q->shape[0], w = q->shape[1];
    Py_ssize_t q0 = q->strides[0], q1 = q->strides[1], q2 = q->strides[2];
    Py_ssize_t s0 = s->strides[0], s1 = s->strides[1];
    Py_ssize_t inside = r < h ? (c1 < w ? c1 : w) : c0; /* pixels c0..inside-1 hold data */
    float nan_value;
    long bad = 0;

    if (inside < c0) inside = c0;
    memcpy(&nan_value, &NAN_BITS, 4);
    for (Py_ssize_t c = c0; c < inside; c++) {
        const int8_t *qp = (const int8_t *)((const char *)q->buf + r * q0 + c * q1);
        float sc, *o = out + (c - c0) * nout;
        memcpy(&sc, (const char *)s->buf + r * s0 + c * s1, 4);
        if (isfinite(sc) && sc >= 0.0f && sc < 1.0f) {
            if (bands != NULL) {
                for (Py_ssize_t b = 0; b < nout; b++) o[b] = (float)qp[bands[b] * q2] * sc;
            } else if (q2 == 1) {
                for (Py_ssize_t b = 0; b < nout; b++) o[b] = (float)qp[b] * sc;
            } else {
                for (Py_ssize_t b = 0; b < nout; b++) o[b] = (float)qp[b * q2] * sc;
            }
        } else {
            bad += isfinite(sc) ? 1 : 0;
            for (Py_ssize_t b = 0; b < nout; b++) o[b] = nan_value;
        }
    }
    memset(out + (inside - c0) * nout, 0, (size_t)((c1 - inside) * nout) * sizeof(float));
    return bad;
}

/* Bytes of dequantised pixels encoded at a time: small enough to stay in L1 beside the hot
 * part of the table, large enough that the per-piece overhead does not show. */
#define PIECE_BYTES 16384

/* Dequantise and encode a size x size tile, a piece of a row at a time (the tile is never
 * whole in memory). piece: room for `step` pixels. Returns the pixels counted. */
static long encode_tile_pieces(const Py_buffer *q, const Py_buffer *s, const int32_t *bands, Py_ssize_t nout,
                               Py_ssize_t size, Py_ssize_t step, float *piece, lzw_state *st) {
    long bad = 0;
    for (Py_ssize_t r = 0; r < size; r++) {
        for (Py_ssize_t c0 = 0; c0 < size; c0 += step) {
            Py_ssize_t c1 = c0 + step < size ? c0 + step : size;
            bad += dequantize_span(q, s, bands, nout, r, c0, c1, piece);
            lzw_feed(st, (const uint8_t *)piece, (c1 - c0) * nout * 4);
        }
    }
    return bad;
}

static int check_format(const Py_buffer *view, const char *codes, Py_ssize_t itemsize, int ndim, const char *what) {
    const char *f = view->format == NULL ? "B" : view->format;
    if (*f == '<' || *f == '=' || *f == '@') f++;
    if (view->ndim != ndim || view->itemsize != itemsize || strlen(f) != 1 || strchr(codes, *f) == NULL) {
        PyErr_Format(PyExc_TypeError, "%s must be a %d-dimensional array of %s", what, ndim,
                     itemsize == 1 ? "int8" : (ndim == 1 ? "int32" : "float32"));
        return 0;
    }
    return 1;
}

PyDoc_STRVAR(encode_quantized_doc,
             "encode_quantized(quantized, scales, bands, size, small=4094, /)\n--\n\n"
             "Dequantise and LZW-encode one pixel-interleaved float32 tile of size x size pixels.\n\n"
             "quantized: int8 (h, w, n), any strides, h and w at most size; scales: float32 (h, w);\n"
             "bands: int32 (nout,) indices into n, C-contiguous, or None for all n. Pixels past\n"
             "(h, w) are zeros (GDAL's padding). Returns (encoded bytes, pixels whose finite scale\n"
             "was outside [0, 1)). small: as for encode(). The GIL is released while working.");

static PyObject *encode_quantized(PyObject *module, PyObject *args) {
    PyObject *q_obj, *s_obj, *b_obj, *small_obj = NULL, *out = NULL;
    Py_ssize_t size, nout, raw, step;
    Py_buffer q, s, b;
    int have_b = 0;
    float *piece = NULL;
    unsigned small;
    lzw_state st;
    lzw_table table = {NULL, NULL, NULL};
    Py_ssize_t written = 0;
    long bad = 0;

    (void)module;
    if (!PyArg_ParseTuple(args, "OOOn|O", &q_obj, &s_obj, &b_obj, &size, &small_obj) ||
        !check_small(small_obj, &small))
        return NULL;
    if (PyObject_GetBuffer(q_obj, &q, PyBUF_RECORDS_RO) < 0) return NULL;
    if (PyObject_GetBuffer(s_obj, &s, PyBUF_RECORDS_RO) < 0) {
        PyBuffer_Release(&q);
        return NULL;
    }
    if (b_obj != Py_None) {
        if (PyObject_GetBuffer(b_obj, &b, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) goto done;
        have_b = 1;
    }
    if (!check_format(&q, "b", 1, 3, "quantized") || !check_format(&s, "f", 4, 2, "scales") ||
        (have_b && !check_format(&b, "iil", 4, 1, "bands")))
        goto done;
    if (s.shape[0] != q.shape[0] || s.shape[1] != q.shape[1] || size <= 0 || q.shape[0] > size ||
        q.shape[1] > size) {
        PyErr_SetString(PyExc_ValueError, "quantized and scales must share (h, w), at most size x size");
        goto done;
    }
    nout = have_b ? b.shape[0] : q.shape[2];
    if (have_b) {
        const int32_t *bi = (const int32_t *)b.buf;
        for (Py_ssize_t k = 0; k < nout; k++) {
            if (bi[k] < 0 || bi[k] >= q.shape[2]) {
                PyErr_Format(PyExc_ValueError, "band index %d outside 0..%zd", (int)bi[k], q.shape[2] - 1);
                goto done;
            }
        }
    }
    if (nout <= 0 || size > PY_SSIZE_T_MAX / 2 / size / nout / 4) { /* and lzw_bound must not overflow */
        PyErr_SetString(PyExc_ValueError, "no bands, or a tile too large");
        goto done;
    }
    raw = size * size * nout * 4;
    step = PIECE_BYTES / (nout * 4) > 0 ? PIECE_BYTES / (nout * 4) : 1;
    if (step > size) step = size;
    out = PyBytes_FromStringAndSize(NULL, lzw_bound(raw));
    piece = malloc((size_t)(step * nout) * sizeof(float));
    if (out == NULL || piece == NULL || !alloc_table(&table)) {
        if (out != NULL) PyErr_NoMemory();
        Py_CLEAR(out);
        goto done;
    }
    Py_BEGIN_ALLOW_THREADS
    lzw_begin(&st, (uint8_t *)PyBytes_AS_STRING(out), &table, small);
    bad = encode_tile_pieces(&q, &s, have_b ? (const int32_t *)b.buf : NULL, nout, size, step, piece, &st);
    written = lzw_finish(&st);
    Py_END_ALLOW_THREADS
    if (_PyBytes_Resize(&out, written) < 0) goto done;

done:
    free(piece);
    free_table(&table);
    PyBuffer_Release(&q);
    PyBuffer_Release(&s);
    if (have_b) PyBuffer_Release(&b);
    if (out == NULL) return NULL;
    return Py_BuildValue("Nl", out, bad);
}

static PyMethodDef lzw_methods[] = {
    {"encode", encode, METH_VARARGS, encode_doc},
    {"encode_quantized", encode_quantized, METH_VARARGS, encode_quantized_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef lzw_module = {
    PyModuleDef_HEAD_INIT, "_lzw", "TIFF LZW encoder (libtiff's bit stream, faster).", -1, lzw_methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__lzw(void) { return PyModule_Create(&lzw_module); }
#endif /* LZW_CORE_ONLY */
