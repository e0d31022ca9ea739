/*
 * Compiled re-reads of ranking keys for the fast placement engine (see fast_rows.py).
 *
 * After every accept, each cached ranking must re-read the keys of the nodes that changed
 * since it was last read. In Python one re-read costs about 0.65 µs; at 10,000 nodes and
 * 100,000 queued entries a cycle makes about two million of them. This module does the same
 * re-read as `Ranking._key` (the table form of the reference's score, fast_index.py), with
 * the same float operations in the same order and the same comparisons, so every key is
 * bit-for-bit the one the Python code computes:
 *
 *   fit:   for each checked name, `have < wanted` fails the node; where the node lacks the
 *          name `have` is 0.0, so that exactly the requests > 0 fail (NaN fails none), which
 *          is the reference's `is_sufficient_to_meet` for any amounts;
 *   score: per index name, a = x - r (0.0 where the basis lacks the name), then
 *          mask &= prefix[bisect_right(thresholds, a)], and the key is
 *          popcount(mask) * size + i.
 *
 * `bisect_right` is written as CPython's: `if (a < t[mid]) hi = mid; else lo = mid + 1;`,
 * which puts a NaN past the end exactly as the Python code does.
 *
 * Two types: `Rows` holds one `NodeRows`' matrices (basis, presence, fit, aligned with the
 * index's names), written row by row as nodes change; `Reader` holds one ranking's request
 * and its keys, and patches the keys of changed nodes. Both keep references to the buffers
 * they read, which Python allocates once per session and never resizes.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define NO_NODE INT64_MAX

/* -- Rows ----------------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    Py_ssize_t size;
    Py_ssize_t width;
    double *basis;     /* size x width */
    uint8_t *present;  /* size x width: 0 where the basis lacks the name */
    double *fit;       /* size x width: 0.0 where the fit bag lacks the name */
    uint8_t *alive;    /* size */
    PyObject *names;   /* tuple of width str: the index's names, for `accept` */
    Py_buffer views[4];
    int held;
} RowsObject;

static int
take_buffer(PyObject *obj, Py_buffer *view, Py_ssize_t itemsize, Py_ssize_t count,
            int writable, const char *what)
{
    int flags = PyBUF_C_CONTIGUOUS | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, view, flags) < 0) {
        return -1;
    }
    if (view->itemsize != itemsize || view->len != itemsize * count) {
        PyErr_Format(PyExc_ValueError,
                     "%s: expected %zd items of %zd bytes, got %zd bytes of %zd-byte items",
                     what, count, itemsize, view->len, view->itemsize);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

static void
Rows_dealloc(RowsObject *self)
{
    for (int k = 0; k < self->held; k++) {
        PyBuffer_Release(&self->views[k]);
    }
    Py_XDECREF(self->names);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int
Rows_init(RowsObject *self, PyObject *args, PyObject *kwds)
{
    PyObject *basis, *present, *fit, *alive, *names;
    Py_ssize_t size, width;
    static char *kwlist[] = {"size", "width", "basis", "present", "fit", "alive", "names", NULL};
    if (self->held || self->names) {
        PyErr_SetString(PyExc_RuntimeError, "Rows is initialised once");
        return -1;
    }
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "nnOOOOO!", kwlist, &size, &width, &basis,
                                     &present, &fit, &alive, &PyTuple_Type, &names)) {
        return -1;
    }
    if (size < 0 || width < 0) {
        PyErr_SetString(PyExc_ValueError, "size and width must be >= 0");
        return -1;
    }
    if (PyTuple_GET_SIZE(names) != width) {
        PyErr_SetString(PyExc_ValueError, "names: expected one name per column");
        return -1;
    }
    for (Py_ssize_t k = 0; k < width; k++) {
        if (!PyUnicode_Check(PyTuple_GET_ITEM(names, k))) {
            PyErr_SetString(PyExc_TypeError, "names: expected str");
            return -1;
        }
    }
    PyObject *objs[4] = {basis, present, fit, alive};
    Py_ssize_t itemsizes[4] = {8, 1, 8, 1};
    Py_ssize_t counts[4] = {size * width, size * width, size * width, size};
    int writable[4] = {1, 1, 1, 0};
    const char *fields[4] = {"basis", "present", "fit", "alive"};
    for (int k = 0; k < 4; k++) {
        if (take_buffer(objs[k], &self->views[k], itemsizes[k], counts[k], writable[k],
                        fields[k]) < 0) {
            return -1;
        }
        self->held = k + 1;
    }
    self->size = size;
    self->width = width;
    self->basis = (double *)self->views[0].buf;
    self->present = (uint8_t *)self->views[1].buf;
    self->fit = (double *)self->views[2].buf;
    self->alive = (uint8_t *)self->views[3].buf;
    Py_INCREF(names);
    self->names = names;
    return 0;
}

/* `arg` as a node index below `size` into *out; -1 with an exception set otherwise */
static int
node_index(PyObject *arg, Py_ssize_t size, Py_ssize_t *out)
{
    Py_ssize_t i = PyLong_AsSsize_t(arg);
    if (i == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (i < 0 || i >= size) {
        PyErr_SetString(PyExc_IndexError, "node out of range");
        return -1;
    }
    *out = i;
    return 0;
}

static int
as_double(PyObject *value, double *out)
{
    double v = PyFloat_AsDouble(value);
    if (v == -1.0 && PyErr_Occurred()) {
        return -1;
    }
    *out = v;
    return 0;
}

/* accept(i, without_row, allocated, remaining) -> basis_row: node i took work. Its basis is
 * `w - allocated.get(name, 0.0)` per name (None where w is None), the same subtraction as the
 * engine's Python form; its fit row is `remaining` aligned with the names. Both are written,
 * and the basis row is returned for the Python side. `allocated` and `remaining` are the
 * bags' dicts. */
static PyObject *
Rows_accept(RowsObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    Py_ssize_t i;
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "accept(i, without_row, allocated, remaining)");
        return NULL;
    }
    if (node_index(args[0], self->size, &i) < 0) {
        return NULL;
    }
    PyObject *without = args[1], *allocated = args[2], *remaining = args[3];
    if (!PyTuple_Check(without) || PyTuple_GET_SIZE(without) != self->width) {
        PyErr_SetString(PyExc_ValueError, "without_row must be a tuple as wide as the index");
        return NULL;
    }
    if (!PyDict_Check(allocated) || !PyDict_Check(remaining)) {
        PyErr_SetString(PyExc_TypeError, "allocated and remaining must be dicts");
        return NULL;
    }
    Py_ssize_t width = self->width;
    double *basis = self->basis + i * width;
    uint8_t *present = self->present + i * width;
    double *fit = self->fit + i * width;
    PyObject *row = PyTuple_New(width);
    if (row == NULL) {
        return NULL;
    }
    for (Py_ssize_t k = 0; k < width; k++) {
        PyObject *name = PyTuple_GET_ITEM(self->names, k);
        PyObject *w = PyTuple_GET_ITEM(without, k);
        PyObject *out;
        if (w == Py_None) {
            basis[k] = 0.0;
            present[k] = 0;
            out = Py_NewRef(Py_None);
        } else {
            double wv, av = 0.0;
            if (as_double(w, &wv) < 0) {
                goto fail;
            }
            PyObject *a = PyDict_GetItemWithError(allocated, name);
            if (a == NULL && PyErr_Occurred()) {
                goto fail;
            }
            if (a != NULL && as_double(a, &av) < 0) {
                goto fail;
            }
            double b = wv - av;
            basis[k] = b;
            present[k] = 1;
            out = PyFloat_FromDouble(b);
            if (out == NULL) {
                goto fail;
            }
        }
        PyTuple_SET_ITEM(row, k, out);
        PyObject *have = PyDict_GetItemWithError(remaining, name);
        if (have == NULL) {
            if (PyErr_Occurred()) {
                goto fail;
            }
            fit[k] = 0.0;
        } else if (as_double(have, &fit[k]) < 0) {
            goto fail;
        }
    }
    return row;
fail:
    Py_DECREF(row);
    return NULL;
}

/* write(i, basis_row, fit_row): a float or None (the bag lacks the name) per index name */
static PyObject *
Rows_write(RowsObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    Py_ssize_t i;
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "write(i, basis_row, fit_row)");
        return NULL;
    }
    if (node_index(args[0], self->size, &i) < 0) {
        return NULL;
    }
    PyObject *basis_row = args[1], *fit_row = args[2];
    if (!PyTuple_Check(basis_row) || !PyTuple_Check(fit_row) ||
        PyTuple_GET_SIZE(basis_row) != self->width || PyTuple_GET_SIZE(fit_row) != self->width) {
        PyErr_SetString(PyExc_ValueError, "rows must be tuples as wide as the index");
        return NULL;
    }
    double *basis = self->basis + i * self->width;
    uint8_t *present = self->present + i * self->width;
    double *fit = self->fit + i * self->width;
    for (Py_ssize_t k = 0; k < self->width; k++) {
        PyObject *x = PyTuple_GET_ITEM(basis_row, k);
        if (x == Py_None) {
            basis[k] = 0.0;
            present[k] = 0;
        } else {
            double v = PyFloat_AsDouble(x);
            if (v == -1.0 && PyErr_Occurred()) {
                return NULL;
            }
            basis[k] = v;
            present[k] = 1;
        }
        PyObject *have = PyTuple_GET_ITEM(fit_row, k);
        if (have == Py_None) {
            fit[k] = 0.0; /* `0.0 < wanted` fails exactly the requests > 0, as a lacking name */
        } else {
            double f = PyFloat_AsDouble(have);
            if (f == -1.0 && PyErr_Occurred()) {
                return NULL;
            }
            fit[k] = f;
        }
    }
    Py_RETURN_NONE;
}

static PyMethodDef Rows_methods[] = {
    {"write", (PyCFunction)(void (*)(void))Rows_write, METH_FASTCALL,
     "write(i, basis_row, fit_row): node i's rows changed"},
    {"accept", (PyCFunction)(void (*)(void))Rows_accept, METH_FASTCALL,
     "accept(i, without_row, allocated, remaining) -> basis_row: node i took work"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject RowsType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "loadmaster.scheduling._rereads.Rows",
    .tp_basicsize = sizeof(RowsObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "One NodeRows' matrices, aligned with the index's names.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Rows_init,
    .tp_dealloc = (destructor)Rows_dealloc,
    .tp_methods = Rows_methods,
};

/* -- Reader --------------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    RowsObject *rows;
    Py_ssize_t types;  /* job types: thresholds per name */
    Py_ssize_t words;  /* 64-bit words per job-type bit set */
    Py_ssize_t checks;
    int64_t *keys;            /* size */
    const double *thresholds; /* width x types, each row sorted */
    const uint64_t *prefix;   /* width x (types + 1) x words */
    const double *request;    /* width: the request aligned with the names, 0.0 where absent */
    const int64_t *check_cols;
    const double *check_wanted;
    uint64_t all_types[8];
    int64_t *block_min; /* per block of BLOCK keys, its minimum: the best key in O(size/BLOCK) */
    Py_ssize_t blocks;
    Py_buffer views[6];
    int held;
} ReaderObject;

#define MAX_WORDS 8 /* 512 job types; wider indexes stay on the Python path */
#define BLOCK 64

static void
Reader_dealloc(ReaderObject *self)
{
    for (int k = 0; k < self->held; k++) {
        PyBuffer_Release(&self->views[k]);
    }
    PyMem_Free(self->block_min);
    Py_XDECREF(self->rows);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int64_t
block_minimum(const int64_t *keys, Py_ssize_t size, Py_ssize_t b)
{
    Py_ssize_t end = (b + 1) * BLOCK < size ? (b + 1) * BLOCK : size;
    int64_t low = NO_NODE;
    for (Py_ssize_t i = b * BLOCK; i < end; i++) {
        if (keys[i] < low) {
            low = keys[i];
        }
    }
    return low;
}

static int
Reader_init(ReaderObject *self, PyObject *args, PyObject *kwds)
{
    PyObject *rows, *keys, *thresholds, *prefix, *request, *cols, *wanted;
    Py_ssize_t types, words, checks;
    static char *kwlist[] = {"rows",    "types", "words", "keys",   "thresholds",
                             "prefix",  "request", "check_cols", "check_wanted", NULL};
    if (self->held || self->rows) {
        PyErr_SetString(PyExc_RuntimeError, "Reader is initialised once");
        return -1;
    }
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!nnOOOOOO", kwlist, &RowsType, &rows,
                                     &types, &words, &keys, &thresholds, &prefix, &request,
                                     &cols, &wanted)) {
        return -1;
    }
    if (types < 0 || words < 1 || words > MAX_WORDS || types > 64 * words) {
        PyErr_SetString(PyExc_ValueError, "types/words out of range");
        return -1;
    }
    RowsObject *r = (RowsObject *)rows;
    Py_ssize_t width = r->width;
    PyObject *cols_obj = cols;
    Py_buffer probe;
    if (PyObject_GetBuffer(cols_obj, &probe, PyBUF_C_CONTIGUOUS) < 0) {
        return -1;
    }
    checks = probe.itemsize ? probe.len / probe.itemsize : 0;
    PyBuffer_Release(&probe);
    PyObject *objs[6] = {keys, thresholds, prefix, request, cols, wanted};
    Py_ssize_t itemsizes[6] = {8, 8, 8, 8, 8, 8};
    Py_ssize_t counts[6] = {r->size, width * types, width * (types + 1) * words, width,
                            checks, checks};
    int writable[6] = {1, 0, 0, 0, 0, 0};
    const char *names[6] = {"keys", "thresholds", "prefix", "request", "check_cols",
                            "check_wanted"};
    for (int k = 0; k < 6; k++) {
        if (take_buffer(objs[k], &self->views[k], itemsizes[k], counts[k], writable[k],
                        names[k]) < 0) {
            return -1;
        }
        self->held = k + 1;
    }
    self->keys = (int64_t *)self->views[0].buf;
    self->thresholds = (const double *)self->views[1].buf;
    self->prefix = (const uint64_t *)self->views[2].buf;
    self->request = (const double *)self->views[3].buf;
    self->check_cols = (const int64_t *)self->views[4].buf;
    self->check_wanted = (const double *)self->views[5].buf;
    for (Py_ssize_t c = 0; c < checks; c++) {
        if (self->check_cols[c] < 0 || self->check_cols[c] >= width) {
            PyErr_SetString(PyExc_ValueError, "check column out of range");
            return -1;
        }
    }
    self->types = types;
    self->words = words;
    self->checks = checks;
    for (Py_ssize_t w = 0; w < MAX_WORDS; w++) {
        Py_ssize_t bits = types - 64 * w;
        self->all_types[w] = bits >= 64 ? UINT64_MAX
                             : bits > 0 ? ((UINT64_C(1) << bits) - 1)
                                        : 0;
    }
    self->blocks = (r->size + BLOCK - 1) / BLOCK;
    self->block_min = PyMem_Malloc(sizeof(int64_t) * (size_t)(self->blocks ? self->blocks : 1));
    if (self->block_min == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t b = 0; b < self->blocks; b++) {
        self->block_min[b] = block_minimum(self->keys, r->size, b);
    }
    Py_INCREF(rows);
    self->rows = r;
    return 0;
}

static inline Py_ssize_t
bisect_right(const double *t, Py_ssize_t n, double a)
{
    Py_ssize_t lo = 0, hi = n;
    while (lo < hi) {
        Py_ssize_t mid = (lo + hi) / 2;
        if (a < t[mid]) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    return lo;
}

static int64_t
key_of(const ReaderObject *self, Py_ssize_t i)
{
    const RowsObject *rows = self->rows;
    if (!rows->alive[i]) {
        return NO_NODE;
    }
    Py_ssize_t width = rows->width;
    const double *fit = rows->fit + i * width;
    for (Py_ssize_t c = 0; c < self->checks; c++) {
        if (fit[self->check_cols[c]] < self->check_wanted[c]) {
            return NO_NODE;
        }
    }
    const double *basis = rows->basis + i * width;
    const uint8_t *present = rows->present + i * width;
    Py_ssize_t words = self->words, types = self->types;
    uint64_t mask[MAX_WORDS];
    memcpy(mask, self->all_types, sizeof(mask));
    for (Py_ssize_t k = 0; k < width; k++) {
        double a = present[k] ? basis[k] - self->request[k] : 0.0;
        Py_ssize_t at = bisect_right(self->thresholds + k * types, types, a);
        const uint64_t *bits = self->prefix + (k * (types + 1) + at) * words;
        for (Py_ssize_t w = 0; w < words; w++) {
            mask[w] &= bits[w];
        }
    }
    int64_t score = 0;
    for (Py_ssize_t w = 0; w < words; w++) {
        score += __builtin_popcountll(mask[w]);
    }
    return score * (int64_t)rows->size + (int64_t)i;
}

/* one changed node: `Ranking._patch`'s loop body; returns 1 if the best key may be stale */
static inline int
patch_one(ReaderObject *self, Py_ssize_t i, int skip_unfit, int64_t *best,
          Py_ssize_t *fitting)
{
    int64_t *keys = self->keys;
    int64_t old = keys[i];
    if (skip_unfit && old == NO_NODE) {
        return 0;
    }
    int64_t now = key_of(self, i);
    if (now == old) {
        return 0;
    }
    keys[i] = now;
    int64_t *low = &self->block_min[i / BLOCK];
    if (now < *low) {
        *low = now;
    } else if (old == *low) {
        *low = block_minimum(keys, self->rows->size, i / BLOCK);
    }
    if (old == NO_NODE) {
        *fitting += 1;
    } else if (now == NO_NODE) {
        *fitting -= 1;
    }
    if (now < *best) {
        *best = now;
    } else if (old == *best) {
        return 1;
    }
    return 0;
}

static int64_t
minimum_of_blocks(const ReaderObject *self)
{
    int64_t low = NO_NODE;
    for (Py_ssize_t b = 0; b < self->blocks; b++) {
        if (self->block_min[b] < low) {
            low = self->block_min[b];
        }
    }
    return low;
}

/* patch_log(log, stamps, since, end, scan_limit, skip_unfit, best, fitting) -> (best,
 * fitting): `Ranking.sync` for the changes logged at positions since..end-1 of `log` (an
 * array of node indices); past `scan_limit` changes, the nodes whose stamp is > since (one
 * pass over all nodes) instead, so each changed node is read once */
static PyObject *
Reader_patch_log(ReaderObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 8) {
        PyErr_SetString(PyExc_TypeError,
                        "patch_log(log, stamps, since, end, scan_limit, skip_unfit, best, "
                        "fitting)");
        return NULL;
    }
    Py_ssize_t since = PyLong_AsSsize_t(args[2]);
    Py_ssize_t end = PyLong_AsSsize_t(args[3]);
    Py_ssize_t scan_limit = PyLong_AsSsize_t(args[4]);
    int skip_unfit = PyObject_IsTrue(args[5]);
    long long best_in = PyLong_AsLongLong(args[6]);
    Py_ssize_t fitting = PyLong_AsSsize_t(args[7]);
    if (PyErr_Occurred() || skip_unfit < 0) {
        return NULL;
    }
    int64_t best = best_in;
    Py_ssize_t size = self->rows->size;
    int stale = 0;
    Py_buffer view;
    if (end - since <= scan_limit) {
        if (PyObject_GetBuffer(args[0], &view, PyBUF_C_CONTIGUOUS) < 0) {
            return NULL;
        }
        const int64_t *log = (const int64_t *)view.buf;
        Py_ssize_t length = view.itemsize == 8 ? view.len / 8 : -1;
        if (since < 0 || end > length || since > end) {
            PyBuffer_Release(&view);
            PyErr_SetString(PyExc_IndexError, "log positions out of range");
            return NULL;
        }
        for (Py_ssize_t c = since; c < end; c++) {
            Py_ssize_t i = (Py_ssize_t)log[c];
            if (i < 0 || i >= size) {
                PyBuffer_Release(&view);
                PyErr_SetString(PyExc_IndexError, "node out of range");
                return NULL;
            }
            stale |= patch_one(self, i, skip_unfit, &best, &fitting);
        }
    } else {
        if (PyObject_GetBuffer(args[1], &view, PyBUF_C_CONTIGUOUS) < 0) {
            return NULL;
        }
        if (view.itemsize != 8 || view.len != 8 * size) {
            PyBuffer_Release(&view);
            PyErr_SetString(PyExc_ValueError, "stamps: expected one int64 per node");
            return NULL;
        }
        const int64_t *stamps = (const int64_t *)view.buf;
        for (Py_ssize_t i = 0; i < size; i++) {
            if (stamps[i] > since) {
                stale |= patch_one(self, i, skip_unfit, &best, &fitting);
            }
        }
    }
    PyBuffer_Release(&view);
    if (stale) {
        best = minimum_of_blocks(self);
    }
    return Py_BuildValue("Ln", (long long)best, fitting);
}

/* fill() -> (best, fitting): every node's key computed and stored, as a ranking's first pass */
static PyObject *
Reader_fill(ReaderObject *self, PyObject *Py_UNUSED(ignored))
{
    int64_t *keys = self->keys;
    Py_ssize_t size = self->rows->size, fitting = 0;
    int64_t best = NO_NODE;
    for (Py_ssize_t b = 0; b < self->blocks; b++) {
        Py_ssize_t end = (b + 1) * BLOCK < size ? (b + 1) * BLOCK : size;
        int64_t low = NO_NODE;
        for (Py_ssize_t i = b * BLOCK; i < end; i++) {
            int64_t key = key_of(self, i);
            keys[i] = key;
            if (key != NO_NODE) {
                fitting += 1;
                if (key < low) {
                    low = key;
                }
            }
        }
        self->block_min[b] = low;
        if (low < best) {
            best = low;
        }
    }
    return Py_BuildValue("Ln", best, fitting);
}

/* key(i): node i's key from its current rows (not stored) */
static PyObject *
Reader_key(ReaderObject *self, PyObject *arg)
{
    Py_ssize_t i;
    if (node_index(arg, self->rows->size, &i) < 0) {
        return NULL;
    }
    return PyLong_FromLongLong(key_of(self, i));
}

static PyMethodDef Reader_methods[] = {
    {"patch_log", (PyCFunction)(void (*)(void))Reader_patch_log, METH_FASTCALL,
     "patch_log(log, stamps, since, end, scan_limit, skip_unfit, best, fitting)"},
    {"fill", (PyCFunction)Reader_fill, METH_NOARGS,
     "fill() -> (best, fitting): every node's key, as a ranking's first pass"},
    {"key", (PyCFunction)Reader_key, METH_O, "key(i): node i's key from its current rows"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject ReaderType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "loadmaster.scheduling._rereads.Reader",
    .tp_basicsize = sizeof(ReaderObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "One ranking's request and keys over one Rows.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Reader_init,
    .tp_dealloc = (destructor)Reader_dealloc,
    .tp_methods = Reader_methods,
};

/* -- module --------------------------------------------------------------------------- */

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "loadmaster.scheduling._rereads",
    .m_doc = "Compiled re-reads of ranking keys (see fast_rows.py).",
    .m_size = -1,
};

PyMODINIT_FUNC
PyInit__rereads(void)
{
    if (PyType_Ready(&RowsType) < 0 || PyType_Ready(&ReaderType) < 0) {
        return NULL;
    }
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) {
        return NULL;
    }
    Py_INCREF(&RowsType);
    if (PyModule_AddObject(m, "Rows", (PyObject *)&RowsType) < 0) {
        Py_DECREF(&RowsType);
        Py_DECREF(m);
        return NULL;
    }
    Py_INCREF(&ReaderType);
    if (PyModule_AddObject(m, "Reader", (PyObject *)&ReaderType) < 0) {
        Py_DECREF(&ReaderType);
        Py_DECREF(m);
        return NULL;
    }
    if (PyModule_AddIntConstant(m, "MAX_TYPES", 64 * MAX_WORDS) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
