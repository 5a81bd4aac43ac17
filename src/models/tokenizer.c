/* CLIP's BPE tokenizer: loading OpenAI's merges file (or Hugging Face's vocab.json + merges.txt)
 * and SimpleTokenizer's encode. Text normalisation is in tokenizer_text.c.
 *
 * Symbols are vocabulary ids rather than strings. A hash table maps each merge (left id, right id)
 * to its rank and the id of the joined string. BPE on one pre-token uses a linked list of symbols
 * and a min-heap of (rank, position) candidates; each round takes every candidate of the lowest
 * rank and merges them left to right, which is exactly what the reference's loop does (merge all
 * occurrences of the best pair, then look again), in O(n log n) instead of O(n^2) per word. */
#include "models/tokenizer.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "io/gzfile.h"
#include "models/tokenizer_text.h"
#include "util/error.h"

#define MAX_FILE_BYTES (512u << 20) /* refuse larger vocabulary files */
#define MAX_VOCAB (1 << 24)         /* ids in a vocab.json must be below this */

typedef struct {
    uint64_t key; /* left id << 32 | right id */
    int32_t rank; /* -1: empty slot */
    int32_t merged;
} pair_slot;

struct vqc_tokenizer {
    pair_slot *pairs;
    size_t pair_mask;
    unsigned pair_bits;
    int32_t byte_sym[256];     /* id of each byte's symbol */
    int32_t byte_end_sym[256]; /* id of each byte's symbol + "</w>" */
    int32_t start, end;
    int vocab_size;
};

/* ---------------------------------------------------------------- merge table */

static uint64_t pair_key(int32_t a, int32_t b)
{
    return (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
}

static size_t pair_hash(const vqc_tokenizer *t, uint64_t key)
{
    return (size_t)((key * 0x9E3779B97F4A7C15ull) >> (64 - t->pair_bits));
}

static int pairs_init(vqc_tokenizer *t, size_t n)
{
    t->pair_bits = 4;
    while (((size_t)1 << t->pair_bits) < 2 * n)
        t->pair_bits++;
    t->pair_mask = ((size_t)1 << t->pair_bits) - 1;
    t->pairs = malloc((t->pair_mask + 1) * sizeof *t->pairs);
    if (!t->pairs)
        return vqc_error_set(VQC_ERR_NOMEM, "out of memory for %zu merges", n);
    for (size_t i = 0; i <= t->pair_mask; i++)
        t->pairs[i].rank = -1;
    return 0;
}

static const pair_slot *pair_find(const vqc_tokenizer *t, int32_t a, int32_t b)
{
    uint64_t key = pair_key(a, b);
    for (size_t i = pair_hash(t, key);; i = (i + 1) & t->pair_mask) {
        const pair_slot *p = &t->pairs[i];
        if (p->rank < 0 || p->key == key)
            return p->rank < 0 ? NULL : p;
    }
}

/* Sets the merge (a, b); a later rank replaces an earlier one, as in the reference's dict. */
static void pair_set(vqc_tokenizer *t, int32_t a, int32_t b, int32_t rank, int32_t merged)
{
    uint64_t key = pair_key(a, b);
    size_t i = pair_hash(t, key);
    while (t->pairs[i].rank >= 0 && t->pairs[i].key != key)
        i = (i + 1) & t->pair_mask;
    t->pairs[i] = (pair_slot){key, rank, merged};
}

/* ---------------------------------------------------------------- string -> id map (loading) */

typedef struct {
    uint32_t off, len; /* in the arena */
    uint32_t hash;
    int32_t id; /* -1: empty slot */
} str_slot;

typedef struct {
    vqc_strbuf arena;
    str_slot *slots;
    size_t mask;
} str_map;

static uint32_t str_hash(const char *s, size_t n)
{
    uint64_t h = 0xCBF29CE484222325ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 0x100000001B3ull;
    return (uint32_t)(h ^ (h >> 32));
}

static int smap_init(str_map *m, size_t n)
{
    size_t cap = 16;
    while (cap < 2 * n)
        cap *= 2;
    m->slots = malloc(cap * sizeof *m->slots);
    if (!m->slots)
        return vqc_error_set(VQC_ERR_NOMEM, "out of memory for %zu tokens", n);
    for (size_t i = 0; i < cap; i++)
        m->slots[i].id = -1;
    m->mask = cap - 1;
    return vqc_strbuf_put(&m->arena, "", 0);
}

static void smap_free(str_map *m)
{
    vqc_strbuf_free(&m->arena);
    free(m->slots);
    m->slots = NULL;
}

/* The slot holding s[0..n) (hash h), or the empty slot where it would go. */
static str_slot *smap_slot(const str_map *m, const char *s, size_t n, uint32_t h)
{
    for (size_t i = h & m->mask;; i = (i + 1) & m->mask) {
        str_slot *e = &m->slots[i];
        if (e->id < 0 || (e->hash == h && e->len == n && memcmp(m->arena.p + e->off, s, n) == 0))
            return e;
    }
}

/* Maps s[0..n) to `id`, replacing an earlier id (the reference builds a dict, last one wins), and
 * stores its slot in *slot when not NULL. The caller sized the map for every string it adds. */
static int smap_set(str_map *m, const char *s, size_t n, int32_t id, str_slot **slot)
{
    uint32_t h = str_hash(s, n);
    str_slot *e = smap_slot(m, s, n, h);
    if (slot)
        *slot = e;
    if (e->id < 0) {
        e->hash = h;
        if (m->arena.n + n > UINT32_MAX)
            return vqc_error_set(VQC_ERR_NOMEM, "vocabulary too large");
        e->off = (uint32_t)m->arena.n;
        e->len = (uint32_t)n;
        int rc = vqc_strbuf_put(&m->arena, s, n);
        if (rc)
            return rc;
    }
    e->id = id;
    return 0;
}

static int32_t smap_get(const str_map *m, const char *s, size_t n)
{
    return smap_slot(m, s, n, str_hash(s, n))->id;
}

/* ---------------------------------------------------------------- files */

/* Whether the text loaded so far holds the header and all merges the reference reads (the rest of
 * OpenAI's file, 2.7 of its 3.2 MB, is never used, so it is not decompressed). A vocab.json is
 * always read whole. A vqc_gzfile_stop_fn; `user` counts the lines seen. */
static int have_all_merges(void *user, const vqc_strbuf *b, size_t from)
{
    size_t *lines = user;
    if (b->p[strspn(b->p, " \t\r\n")] == '{')
        return 0;
    for (const char *p = b->p + from; (p = memchr(p, '\n', b->n - (size_t)(p - b->p))); p++)
        if (++*lines > VQC_TOKENIZER_MERGES)
            return 1;
    return 0;
}

/* Reads a file, gunzipping it when it is gzip data; with `merges_only`, stops once
 * have_all_merges() says so. */
static int read_file(const char *path, int merges_only, vqc_strbuf *out)
{
    size_t lines = 0;
    return vqc_gzfile_read(path, MAX_FILE_BYTES, merges_only ? have_all_merges : NULL, &lines, out);
}

/* "<folder of path>/merges.txt" in `out`. */
static int sibling_merges_path(const char *path, vqc_strbuf *out)
{
    const char *slash = strrchr(path, '/');
    int rc = vqc_strbuf_put(out, path, slash ? (size_t)(slash - path) + 1 : 0);
    return rc ? rc : vqc_strbuf_put(out, "merges.txt", 10);
}

/* ---------------------------------------------------------------- merges */

typedef struct {
    const char *a, *b; /* the two halves, in the file's text */
    size_t alen, blen;
    str_slot *joined; /* the joined string's vocabulary slot, when already known */
} merge_line;

static int is_field_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* Splits line[0..n) into exactly two whitespace-separated fields; returns 0 or -1. */
static int split_merge(const char *line, size_t n, merge_line *m)
{
    const char *f[3];
    size_t len[3], k = 0;
    for (size_t i = 0; i < n;) {
        if (is_field_space(line[i])) {
            i++;
            continue;
        }
        size_t start = i;
        while (i < n && !is_field_space(line[i]))
            i++;
        if (k == 2)
            return -1;
        f[k] = line + start, len[k++] = i - start;
    }
    if (k != 2)
        return -1;
    *m = (merge_line){f[0], f[1], len[0], len[1], NULL};
    return 0;
}

/* Parses the merges text as the reference does: skips the first (header) line and takes the next
 * VQC_TOKENIZER_MERGES lines, each "A B". `m` has room for VQC_TOKENIZER_MERGES entries and
 * points into `text`. With `allow_fewer` (a vocab.json's merges, whose vocabulary the JSON file
 * defines), the text may end earlier, as the reference's slice allows; otherwise fewer merges are
 * an error (a cut OpenAI file would silently shrink the vocabulary). Stores the count in *count. */
static int parse_merges(const char *text, size_t n, const char *path, int allow_fewer,
                        merge_line *m, int *count)
{
    const char *nl = memchr(text, '\n', n);
    size_t pos = nl ? (size_t)(nl - text) + 1 : n;
    if (!vqc_text_utf8_valid(text, pos))
        return vqc_error_set(VQC_ERR_FORMAT, "%s: line 1 is not UTF-8 text", path);
    int r = 0;
    for (; r < VQC_TOKENIZER_MERGES; r++) {
        if (pos >= n && allow_fewer)
            break;
        if (pos >= n)
            return vqc_error_set(VQC_ERR_FORMAT, "%s: only %d merges, expected %d", path, r,
                                 VQC_TOKENIZER_MERGES);
        nl = memchr(text + pos, '\n', n - pos);
        size_t end = nl ? (size_t)(nl - text) : n;
        if (!vqc_text_utf8_valid(text + pos, end - pos))
            return vqc_error_set(VQC_ERR_FORMAT, "%s: line %d is not UTF-8 text", path, r + 2);
        if (split_merge(text + pos, end - pos, &m[r]) != 0)
            return vqc_error_set(VQC_ERR_FORMAT, "%s: line %d is not a merge \"A B\"", path, r + 2);
        pos = end + 1;
    }
    *count = r;
    return 0;
}

/* ---------------------------------------------------------------- vocabulary */

/* Whether bytes_to_unicode() maps byte b to itself (! .. ~, ¡ .. ¬, ® .. ÿ). */
static int printable_byte(int b)
{
    return (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
}

/* bytes_to_unicode(): byte b stands for itself when printable, else for 256 + its index among the
 * other bytes. Writes that character as UTF-8 to `out`; returns its length. */
static size_t byte_symbol(int b, char *out)
{
    int32_t c = b;
    if (!printable_byte(b)) {
        c = 256;
        for (int x = 0; x < b; x++)
            c += !printable_byte(x);
    }
    return (size_t)utf8proc_encode_char(c, (utf8proc_uint8_t *)out);
}

/* The bytes in the reference's vocabulary order: printable ones first, each group ascending. */
static void byte_order(int order[256])
{
    int k = 0;
    for (int pass = 0; pass < 2; pass++)
        for (int b = 0; b < 256; b++)
            if (printable_byte(b) == !pass)
                order[k++] = b;
}

/* Joins a merge's two strings into `tmp`. */
static int join_merge(const merge_line *m, vqc_strbuf *tmp)
{
    vqc_strbuf_clear(tmp);
    int rc = vqc_strbuf_put(tmp, m->a, m->alen);
    return rc ? rc : vqc_strbuf_put(tmp, m->b, m->blen);
}

/* SimpleTokenizer's vocabulary: byte symbols, the same with "</w>", joined merges, specials. */
static int build_openai_vocab(vqc_tokenizer *t, str_map *v, merge_line *m)
{
    int order[256];
    byte_order(order);
    int rc = smap_init(v, 512 + VQC_TOKENIZER_MERGES + 2);
    int32_t id = 0;
    char sym[8];
    for (int w = 0; w < 2; w++)
        for (int k = 0; !rc && k < 256; k++) {
            size_t len = byte_symbol(order[k], sym);
            if (w)
                memcpy(sym + len, "</w>", 4), len += 4;
            rc = smap_set(v, sym, len, id++, NULL);
        }
    vqc_strbuf tmp = {0};
    for (int r = 0; !rc && r < VQC_TOKENIZER_MERGES; r++) {
        rc = join_merge(&m[r], &tmp);
        if (!rc)
            rc = smap_set(v, tmp.p, tmp.n, id++, &m[r].joined);
    }
    vqc_strbuf_free(&tmp);
    if (!rc)
        rc = smap_set(v, "<|startoftext|>", 15, id++, NULL);
    if (!rc)
        rc = smap_set(v, "<|endoftext|>", 13, id++, NULL);
    t->vocab_size = id;
    return rc;
}

/* Reads one vocab.json entry (token -> id) into the map; `seen` flags ids already used. */
static int add_json_token(str_map *v, const cJSON *item, unsigned char *seen, const char *path)
{
    double d = item->valuedouble;
    if (!cJSON_IsNumber(item) || !(d >= 0 && d < MAX_VOCAB) || d != (double)(int32_t)d)
        return vqc_error_set(VQC_ERR_FORMAT, "%s: token \"%s\" has no valid id", path,
                             item->string);
    int32_t id = (int32_t)d;
    if (seen[id])
        return vqc_error_set(VQC_ERR_FORMAT, "%s: id %d is used twice", path, (int)id);
    seen[id] = 1;
    return smap_set(v, item->string, strlen(item->string), id, NULL);
}

/* Hugging Face's vocab.json: a JSON object mapping each token to its id. */
static int build_json_vocab(vqc_tokenizer *t, str_map *v, const vqc_strbuf *json, const char *path)
{
    cJSON *root = cJSON_ParseWithLength(json->p, json->n);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return vqc_error_set(VQC_ERR_FORMAT, "%s: not a JSON object of token ids", path);
    }
    unsigned char *seen = calloc(MAX_VOCAB, 1);
    int rc = seen ? smap_init(v, (size_t)cJSON_GetArraySize(root))
                  : vqc_error_set(VQC_ERR_NOMEM, "out of memory reading %s", path);
    int max_id = -1;
    for (const cJSON *it = root->child; !rc && it; it = it->next) {
        rc = add_json_token(v, it, seen, path);
        if (!rc && (int)it->valuedouble > max_id)
            max_id = (int)it->valuedouble;
    }
    free(seen);
    cJSON_Delete(root);
    t->vocab_size = max_id + 1;
    return rc;
}

/* Fills the merge table from the merges and vocabulary. A merge whose halves are not tokens can
 * never apply (as in the reference) and is skipped; one whose joined string is not a token is an
 * error (only possible with a vocab.json). */
static int build_pairs(vqc_tokenizer *t, const str_map *v, const merge_line *m, int count,
                       const char *path)
{
    int rc = pairs_init(t, (size_t)count);
    vqc_strbuf tmp = {0};
    for (int r = 0; !rc && r < count; r++) {
        int32_t a = smap_get(v, m[r].a, m[r].alen), b = smap_get(v, m[r].b, m[r].blen);
        if (a < 0 || b < 0)
            continue;
        int32_t ab = m[r].joined ? m[r].joined->id : -1;
        if (!m[r].joined) {
            rc = join_merge(&m[r], &tmp);
            ab = rc ? -1 : smap_get(v, tmp.p, tmp.n);
        }
        if (!rc && ab < 0)
            rc = vqc_error_set(VQC_ERR_FORMAT, "%s: merge %d (\"%s\") is not in the vocabulary",
                               path, r + 1, tmp.p);
        if (!rc)
            pair_set(t, a, b, r, ab);
    }
    vqc_strbuf_free(&tmp);
    return rc;
}

/* Looks up the byte symbols and the special tokens. */
static int find_symbols(vqc_tokenizer *t, const str_map *v, const char *path)
{
    char sym[8];
    for (int b = 0; b < 256; b++) {
        size_t len = byte_symbol(b, sym);
        t->byte_sym[b] = smap_get(v, sym, len);
        memcpy(sym + len, "</w>", 4);
        t->byte_end_sym[b] = smap_get(v, sym, len + 4);
        if (t->byte_sym[b] < 0 || t->byte_end_sym[b] < 0)
            return vqc_error_set(VQC_ERR_FORMAT, "%s: no token for byte 0x%02X", path, b);
    }
    t->start = smap_get(v, "<|startoftext|>", 15);
    t->end = smap_get(v, "<|endoftext|>", 13);
    if (t->start < 0 || t->end < 0)
        return vqc_error_set(VQC_ERR_FORMAT, "%s: no <|startoftext|> or <|endoftext|> token", path);
    return 0;
}

/* Builds the tokenizer from the loaded file: OpenAI's merges file, or a vocab.json. */
static int build(vqc_tokenizer *t, const char *path, const vqc_strbuf *file, merge_line *m)
{
    str_map vocab = {0};
    vqc_strbuf merges = {0}, mpath = {0};
    size_t lead = strspn(file->p, " \t\r\n");
    int json = file->p[lead] == '{', rc, count = 0;
    if (json) {
        rc = sibling_merges_path(path, &mpath);
        if (!rc)
            rc = read_file(mpath.p, 1, &merges);
        if (!rc)
            rc = parse_merges(merges.p, merges.n, mpath.p, 1, m, &count);
        if (!rc)
            rc = build_json_vocab(t, &vocab, file, path);
    } else {
        rc = parse_merges(file->p, file->n, path, 0, m, &count);
        if (!rc)
            rc = build_openai_vocab(t, &vocab, m);
    }
    if (!rc)
        rc = build_pairs(t, &vocab, m, count, json ? mpath.p : path);
    if (!rc)
        rc = find_symbols(t, &vocab, path);
    smap_free(&vocab);
    vqc_strbuf_free(&merges);
    vqc_strbuf_free(&mpath);
    return rc;
}

int vqc_tokenizer_load(const char *path, vqc_tokenizer **out)
{
    if (!out)
        return vqc_error_set(VQC_ERR_USAGE, "vqc_tokenizer_load: no output pointer");
    *out = NULL;
    if (!path)
        return vqc_error_set(VQC_ERR_USAGE, "vqc_tokenizer_load: no path");
    vqc_tokenizer *t = calloc(1, sizeof *t);
    merge_line *m = malloc(VQC_TOKENIZER_MERGES * sizeof *m);
    vqc_strbuf file = {0};
    int rc = t && m ? read_file(path, 1, &file)
                    : vqc_error_set(VQC_ERR_NOMEM, "out of memory loading %s", path);
    if (!rc)
        rc = build(t, path, &file, m);
    vqc_strbuf_free(&file);
    free(m);
    if (rc) {
        vqc_tokenizer_free(t);
        return rc;
    }
    *out = t;
    return 0;
}

void vqc_tokenizer_free(vqc_tokenizer *tok)
{
    if (!tok)
        return;
    free(tok->pairs);
    free(tok);
}

int vqc_tokenizer_vocab_size(const vqc_tokenizer *tok)
{
    return tok ? tok->vocab_size : 0;
}

int vqc_tokenizer_start_token(const vqc_tokenizer *tok)
{
    return tok ? tok->start : -1;
}

int vqc_tokenizer_end_token(const vqc_tokenizer *tok)
{
    return tok ? tok->end : -1;
}

/* ---------------------------------------------------------------- BPE */

typedef struct {
    int32_t *v;
    size_t n, cap;
} id_list;

static int ids_push(id_list *l, int32_t id)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 64;
        int32_t *v = cap < SIZE_MAX / sizeof *v ? realloc(l->v, cap * sizeof *v) : NULL;
        if (!v)
            return vqc_error_set(VQC_ERR_NOMEM, "out of memory for %zu tokens", cap);
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = id;
    return 0;
}

/* Scratch space for BPE on one pre-token of up to `cap` bytes. A heap entry is rank << 32 | pos;
 * there are at most 3 * cap of them (the first pairs, then two per merge). */
typedef struct {
    int32_t *sym, *prev, *next; /* symbol ids (-1: merged away) and the list links, per position */
    uint64_t *heap;
    uint32_t *batch;
    size_t cap, heap_n;
} bpe_work;

static void work_free(bpe_work *w)
{
    free(w->sym), free(w->prev), free(w->next), free(w->heap), free(w->batch);
    *w = (bpe_work){0};
}

static int work_reserve(bpe_work *w, size_t n)
{
    if (n <= w->cap)
        return 0;
    if (n > INT32_MAX / 3)
        return vqc_error_set(VQC_ERR_NOMEM, "a word of %zu bytes is too long", n);
    work_free(w);
    w->sym = malloc(n * sizeof *w->sym);
    w->prev = malloc(n * sizeof *w->prev);
    w->next = malloc(n * sizeof *w->next);
    w->heap = malloc(3 * n * sizeof *w->heap);
    w->batch = malloc(3 * n * sizeof *w->batch);
    if (!w->sym || !w->prev || !w->next || !w->heap || !w->batch) {
        work_free(w);
        return vqc_error_set(VQC_ERR_NOMEM, "out of memory for a word of %zu bytes", n);
    }
    w->cap = n;
    return 0;
}

static void heap_push(bpe_work *w, uint64_t key)
{
    size_t i = w->heap_n++;
    for (; i > 0 && w->heap[(i - 1) / 2] > key; i = (i - 1) / 2)
        w->heap[i] = w->heap[(i - 1) / 2];
    w->heap[i] = key;
}

static uint64_t heap_pop(bpe_work *w)
{
    uint64_t top = w->heap[0], last = w->heap[--w->heap_n];
    size_t i = 0, n = w->heap_n;
    for (size_t c; (c = 2 * i + 1) < n; i = c) {
        if (c + 1 < n && w->heap[c + 1] < w->heap[c])
            c++;
        if (last <= w->heap[c])
            break;
        w->heap[i] = w->heap[c];
    }
    if (n)
        w->heap[i] = last;
    return top;
}

/* Queues the pair starting at position p (which has a successor) when it is a merge. */
static void push_pair(const vqc_tokenizer *t, bpe_work *w, int32_t p)
{
    const pair_slot *s = pair_find(t, w->sym[p], w->sym[w->next[p]]);
    if (s)
        heap_push(w, (uint64_t)s->rank << 32 | (uint32_t)p);
}

/* Merges the pair at p if it still is the merge of `rank`, and queues the pairs it forms. */
static void merge_at(const vqc_tokenizer *t, bpe_work *w, int32_t p, int32_t rank)
{
    int32_t q = w->next[p];
    if (w->sym[p] < 0 || q < 0)
        return;
    const pair_slot *s = pair_find(t, w->sym[p], w->sym[q]);
    if (!s || s->rank != rank)
        return; /* stale entry */
    w->sym[p] = s->merged;
    w->sym[q] = -1;
    w->next[p] = w->next[q];
    if (w->next[q] >= 0)
        w->prev[w->next[q]] = p;
    if (w->prev[p] >= 0)
        push_pair(t, w, w->prev[p]);
    if (w->next[p] >= 0)
        push_pair(t, w, p);
}

/* One step of the reference's loop: every occurrence of the lowest-ranked pair, left to right. */
static void merge_round(const vqc_tokenizer *t, bpe_work *w)
{
    uint64_t top = heap_pop(w);
    int32_t rank = (int32_t)(top >> 32);
    size_t nb = 0;
    w->batch[nb++] = (uint32_t)top;
    while (w->heap_n && (int32_t)(w->heap[0] >> 32) == rank)
        w->batch[nb++] = (uint32_t)heap_pop(w);
    for (size_t k = 0; k < nb; k++)
        merge_at(t, w, (int32_t)w->batch[k], rank);
}

/* SimpleTokenizer.bpe on the UTF-8 bytes of one pre-token; appends the ids to `out`. */
static int bpe_word(const vqc_tokenizer *t, const unsigned char *b, size_t n, bpe_work *w,
                    id_list *out)
{
    int rc = work_reserve(w, n);
    if (rc)
        return rc;
    for (size_t i = 0; i < n; i++) {
        w->sym[i] = i + 1 < n ? t->byte_sym[b[i]] : t->byte_end_sym[b[i]];
        w->prev[i] = (int32_t)i - 1;
        w->next[i] = i + 1 < n ? (int32_t)i + 1 : -1;
    }
    w->heap_n = 0;
    for (size_t i = 0; i + 1 < n; i++)
        push_pair(t, w, (int32_t)i);
    while (w->heap_n)
        merge_round(t, w);
    for (int32_t i = 0; !rc && i >= 0; i = w->next[i])
        rc = ids_push(out, w->sym[i]);
    return rc;
}

/* ---------------------------------------------------------------- encoding */

static int encode_piece(const vqc_tokenizer *t, const char *s, size_t n, bpe_work *w, id_list *out)
{
    /* The reference's cache starts with the two special tokens, so typing them yields them. */
    if (n == 15 && memcmp(s, "<|startoftext|>", 15) == 0)
        return ids_push(out, t->start);
    if (n == 13 && memcmp(s, "<|endoftext|>", 13) == 0)
        return ids_push(out, t->end);
    return bpe_word(t, (const unsigned char *)s, n, w, out);
}

int vqc_tokenizer_encode(const vqc_tokenizer *tok, const char *text, int32_t **ids, size_t *n)
{
    if (!tok || !text || !ids || !n)
        return vqc_error_set(VQC_ERR_USAGE, "vqc_tokenizer_encode: NULL argument");
    *ids = NULL;
    *n = 0;
    vqc_strbuf clean = {0};
    bpe_work w = {0};
    id_list out = {0};
    int rc = vqc_strbuf_put(&clean, "", 0);
    if (!rc)
        rc = vqc_text_clean(text, strlen(text), &clean);
    size_t pos = 0, start, len;
    while (!rc && vqc_text_next_piece(clean.p, clean.n, &pos, &start, &len))
        rc = encode_piece(tok, clean.p + start, len, &w, &out);
    vqc_strbuf_free(&clean);
    work_free(&w);
    if (rc) {
        free(out.v);
        return rc;
    }
    *ids = out.v;
    *n = out.n;
    return 0;
}

int vqc_tokenizer_tokenize(const vqc_tokenizer *tok, const char *text, int context_length,
                           int64_t *out, int *n_dropped)
{
    if (!tok || !text || !out || context_length < 1)
        return vqc_error_set(VQC_ERR_USAGE, "vqc_tokenizer_tokenize: %s",
                             context_length < 1 ? "context length below 1" : "NULL argument");
    int32_t *ids;
    size_t n;
    int rc = vqc_tokenizer_encode(tok, text, &ids, &n);
    if (rc)
        return rc;
    size_t ctx = (size_t)context_length, total = n + 2;
    for (size_t i = 0; i < ctx; i++)
        out[i] = i == 0 ? tok->start : i <= n ? ids[i - 1] : i == n + 1 ? tok->end : 0;
    if (total > ctx)
        out[ctx - 1] = tok->end;
    if (n_dropped)
        *n_dropped = total > ctx ? (total - ctx > INT_MAX ? INT_MAX : (int)(total - ctx)) : 0;
    free(ids);
    return 0;
}

int vqc_tokenizer_normalize(const char *text, char **out)
{
    if (!text || !out)
        return vqc_error_set(VQC_ERR_USAGE, "vqc_tokenizer_normalize: NULL argument");
    vqc_strbuf b = {0};
    int rc = vqc_strbuf_put(&b, "", 0);
    if (!rc)
        rc = vqc_text_clean(text, strlen(text), &b);
    if (rc) {
        vqc_strbuf_free(&b);
        return rc;
    }
    *out = b.p;
    return 0;
}
