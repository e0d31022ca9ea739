/*
 * Compiled arithmetic of resource bags (see resources.py, which holds the same operations in
 * Python and uses these where the package was built with a C compiler).
 *
 * A bag is a dict of name -> float. Every function returns a new dict (or a bool) computed
 * exactly as the Python form: the same float operation per name in the same order, the same
 * comparisons, names in the same insertion order. An amount that is not an exact float (an
 * int, a subclass) is handed to the generic number protocol, as Python would do.
 *
 * A scheduling cycle at 1,000 nodes makes tens of thousands of these operations (offers,
 * allocations, watermarks); in Python each costs about as much as building a small dict
 * twice over.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>

/* a + b, as Python's `a + b` for two amounts */
static PyObject *
plus(PyObject *a, PyObject *b)
{
    if (PyFloat_CheckExact(a) && PyFloat_CheckExact(b)) {
        return PyFloat_FromDouble(PyFloat_AS_DOUBLE(a) + PyFloat_AS_DOUBLE(b));
    }
    return PyNumber_Add(a, b);
}

static PyObject *
minus(PyObject *a, PyObject *b)
{
    if (PyFloat_CheckExact(a) && PyFloat_CheckExact(b)) {
        return PyFloat_FromDouble(PyFloat_AS_DOUBLE(a) - PyFloat_AS_DOUBLE(b));
    }
    return PyNumber_Subtract(a, b);
}

/* a < b as a C int (-1 on error), as Python's `a < b` */
static int
less(PyObject *a, PyObject *b)
{
    if (PyFloat_CheckExact(a) && PyFloat_CheckExact(b)) {
        return PyFloat_AS_DOUBLE(a) < PyFloat_AS_DOUBLE(b);
    }
    return PyObject_RichCompareBool(a, b, Py_LT);
}

static PyObject *zero; /* 0.0 */

static int
check_dict(PyObject *obj, const char *what)
{
    if (!PyDict_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s must be a dict", what);
        return -1;
    }
    return 0;
}

/* the arguments of a two-bag operation: `call` names it in the error */
static int
two_bags(PyObject *const *args, Py_ssize_t nargs, const char *call, const char *second)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, call);
        return -1;
    }
    if (check_dict(args[0], "values") < 0 || check_dict(args[1], second) < 0) {
        return -1;
    }
    return 0;
}

/* out[name] = out.get(name, 0.0) + value for every item of `other` */
static int
add_into(PyObject *out, PyObject *other)
{
    Py_ssize_t pos = 0;
    PyObject *name, *value;
    while (PyDict_Next(other, &pos, &name, &value)) {
        PyObject *have = PyDict_GetItemWithError(out, name);
        if (have == NULL && PyErr_Occurred()) {
            return -1;
        }
        PyObject *sum = plus(have != NULL ? have : zero, value);
        if (sum == NULL) {
            return -1;
        }
        int failed = PyDict_SetItem(out, name, sum);
        Py_DECREF(sum);
        if (failed) {
            return -1;
        }
    }
    return 0;
}

/* out[name] -= value for every item of `other` whose name is in out */
static int
subtract_into(PyObject *out, PyObject *other)
{
    Py_ssize_t pos = 0;
    PyObject *name, *value;
    while (PyDict_Next(other, &pos, &name, &value)) {
        PyObject *have = PyDict_GetItemWithError(out, name);
        if (have == NULL) {
            if (PyErr_Occurred()) {
                return -1;
            }
            continue;
        }
        PyObject *difference = minus(have, value);
        if (difference == NULL) {
            return -1;
        }
        int failed = PyDict_SetItem(out, name, difference);
        Py_DECREF(difference);
        if (failed) {
            return -1;
        }
    }
    return 0;
}

static PyObject *
bags_add(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (two_bags(args, nargs, "add(values, other)", "other") < 0) {
        return NULL;
    }
    PyObject *out = PyDict_Copy(args[0]);
    if (out == NULL || add_into(out, args[1]) < 0) {
        Py_XDECREF(out);
        return NULL;
    }
    return out;
}

static PyObject *
bags_subtract(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (two_bags(args, nargs, "subtract(values, other)", "other") < 0) {
        return NULL;
    }
    PyObject *out = PyDict_Copy(args[0]);
    if (out == NULL || subtract_into(out, args[1]) < 0) {
        Py_XDECREF(out);
        return NULL;
    }
    return out;
}

/* The many-bag forms (subtract_all, total) keep the running amounts as C doubles while every
 * amount involved is an exact float and every name is already in the result: the same
 * subtractions and additions in the same order as one PyFloat per step, without allocating
 * one. Anything else (an int amount, a name to insert) takes the per-item path. */
#define MAX_FAST_NAMES 16

typedef struct {
    Py_ssize_t count;
    PyObject *names[MAX_FAST_NAMES]; /* borrowed from the result dict */
    double amounts[MAX_FAST_NAMES];
    int changed[MAX_FAST_NAMES];
} Running;

/* 1 if `out` can be held as a Running (fills it), 0 if not */
static int
running_load(PyObject *out, Running *run)
{
    Py_ssize_t pos = 0, k = 0;
    PyObject *name, *value;
    if (PyDict_GET_SIZE(out) > MAX_FAST_NAMES) {
        return 0;
    }
    while (PyDict_Next(out, &pos, &name, &value)) {
        if (!PyFloat_CheckExact(value) || !PyUnicode_CheckExact(name)) {
            return 0;
        }
        run->names[k] = name;
        run->amounts[k] = PyFloat_AS_DOUBLE(value);
        run->changed[k] = 0;
        k++;
    }
    run->count = k;
    return 1;
}

static Py_ssize_t
running_find(const Running *run, PyObject *name)
{
    for (Py_ssize_t k = 0; k < run->count; k++) {
        if (run->names[k] == name) {
            return k;
        }
    }
    for (Py_ssize_t k = 0; k < run->count; k++) {
        if (PyUnicode_Compare(run->names[k], name) == 0) {
            return k;
        }
    }
    return -1;
}

/* 1 if every item of `bag` could be applied to `run` (then it was), 0 if `bag` needs the
 * per-item path (then `run` is unchanged) */
static int
running_apply(Running *run, PyObject *bag, int adding)
{
    Py_ssize_t pos = 0;
    PyObject *name, *value;
    Py_ssize_t at[MAX_FAST_NAMES * 2];
    Py_ssize_t n = 0;
    if (PyDict_GET_SIZE(bag) > MAX_FAST_NAMES * 2) {
        return 0;
    }
    while (PyDict_Next(bag, &pos, &name, &value)) {
        if (!PyFloat_CheckExact(value) || !PyUnicode_CheckExact(name)) {
            return 0;
        }
        Py_ssize_t k = running_find(run, name);
        if (k < 0 && adding) {
            return 0; /* a name to insert */
        }
        at[n++] = k;
    }
    pos = 0;
    n = 0;
    while (PyDict_Next(bag, &pos, &name, &value)) {
        Py_ssize_t k = at[n++];
        if (k < 0) {
            continue; /* subtracting a name the result lacks: a no-op */
        }
        double v = PyFloat_AS_DOUBLE(value);
        run->amounts[k] = adding ? run->amounts[k] + v : run->amounts[k] - v;
        run->changed[k] = 1;
    }
    return 1;
}

/* write the changed amounts back into `out` (their places in it are kept) */
static int
running_store(Running *run, PyObject *out)
{
    for (Py_ssize_t k = 0; k < run->count; k++) {
        if (!run->changed[k]) {
            continue;
        }
        PyObject *v = PyFloat_FromDouble(run->amounts[k]);
        if (v == NULL || PyDict_SetItem(out, run->names[k], v) < 0) {
            Py_XDECREF(v);
            return -1;
        }
        Py_DECREF(v);
        run->changed[k] = 0;
    }
    return 0;
}

/* out (a fresh copy) with every bag of `seq` added or subtracted in order */
static PyObject *
accumulate(PyObject *start, PyObject *bags, int adding, const char *what)
{
    PyObject *seq = PySequence_Fast(bags, what);
    if (seq == NULL) {
        return NULL;
    }
    PyObject *out = PyDict_Copy(start);
    if (out == NULL) {
        Py_DECREF(seq);
        return NULL;
    }
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    PyObject **items = PySequence_Fast_ITEMS(seq);
    Running run;
    int fast = running_load(out, &run);
    for (Py_ssize_t k = 0; k < n; k++) {
        PyObject *bag = items[k];
        if (check_dict(bag, adding ? "bags[k]" : "others[k]") < 0) {
            goto fail;
        }
        if (fast && running_apply(&run, bag, adding)) {
            continue;
        }
        if (fast && running_store(&run, out) < 0) {
            goto fail;
        }
        if ((adding ? add_into(out, bag) : subtract_into(out, bag)) < 0) {
            goto fail;
        }
        fast = running_load(out, &run); /* the dict may have new names or objects now */
    }
    if (fast && running_store(&run, out) < 0) {
        goto fail;
    }
    Py_DECREF(seq);
    return out;
fail:
    Py_DECREF(seq);
    Py_DECREF(out);
    return NULL;
}

/* the arguments of a many-bag operation, then the operation */
static PyObject *
many_bags(PyObject *const *args, Py_ssize_t nargs, int adding)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError,
                        adding ? "total(start, bags)" : "subtract_all(values, others)");
        return NULL;
    }
    if (check_dict(args[0], adding ? "start" : "values") < 0) {
        return NULL;
    }
    return accumulate(args[0], args[1], adding,
                      adding ? "bags must be a sequence of dicts"
                             : "others must be a sequence of dicts");
}

/* subtract_all(values, others): `others` is a sequence of dicts, subtracted in order */
static PyObject *
bags_subtract_all(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    return many_bags(args, nargs, 0);
}

/* total(start, bags): `start` (copied) plus every bag of the sequence, in order */
static PyObject *
bags_total(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    return many_bags(args, nargs, 1);
}

/* is_sufficient(values, request): every requested amount available; a lacking name only
 * meets a request <= 0 */
static PyObject *
bags_is_sufficient(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (two_bags(args, nargs, "is_sufficient(values, request)", "request") < 0) {
        return NULL;
    }
    Py_ssize_t pos = 0;
    PyObject *name, *wanted;
    while (PyDict_Next(args[1], &pos, &name, &wanted)) {
        PyObject *have = PyDict_GetItemWithError(args[0], name);
        int short_of;
        if (have == NULL) {
            if (PyErr_Occurred()) {
                return NULL;
            }
            short_of = less(zero, wanted); /* wanted > 0.0 */
        } else {
            short_of = less(have, wanted);
        }
        if (short_of < 0) {
            return NULL;
        }
        if (short_of) {
            Py_RETURN_FALSE;
        }
    }
    Py_RETURN_TRUE;
}

/* increase_up_to(values, other): per name the larger; names only in `other` copied in */
static PyObject *
bags_increase_up_to(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (two_bags(args, nargs, "increase_up_to(values, other)", "other") < 0) {
        return NULL;
    }
    PyObject *out = PyDict_Copy(args[0]);
    if (out == NULL) {
        return NULL;
    }
    Py_ssize_t pos = 0;
    PyObject *name, *value;
    while (PyDict_Next(args[1], &pos, &name, &value)) {
        PyObject *have = PyDict_GetItemWithError(out, name);
        int raise;
        if (have == NULL) {
            if (PyErr_Occurred()) {
                Py_DECREF(out);
                return NULL;
            }
            raise = 1;
        } else {
            raise = less(have, value);
        }
        if (raise < 0 || (raise && PyDict_SetItem(out, name, value) < 0)) {
            Py_DECREF(out);
            return NULL;
        }
    }
    return out;
}

static PyObject *builtin_round; /* Python's `round` */
static PyObject *two;           /* 2 */

/* round_values(values): each amount rounded to 2 decimals; a whole number is kept as it is
 * (`value % 1.0 == 0.0`), any other goes through Python's own `round(value, 2)` */
static PyObject *
bags_round_values(PyObject *Py_UNUSED(module), PyObject *values)
{
    if (check_dict(values, "values") < 0) {
        return NULL;
    }
    PyObject *out = PyDict_New();
    if (out == NULL) {
        return NULL;
    }
    Py_ssize_t pos = 0;
    PyObject *name, *value;
    while (PyDict_Next(values, &pos, &name, &value)) {
        PyObject *rounded;
        if (PyFloat_CheckExact(value) && fmod(PyFloat_AS_DOUBLE(value), 1.0) == 0.0) {
            rounded = Py_NewRef(value); /* Python's % is 0.0 exactly when fmod is 0 */
        } else {
            PyObject *call_args[2] = {value, two};
            rounded = PyObject_Vectorcall(builtin_round, call_args, 2, NULL);
        }
        if (rounded == NULL || PyDict_SetItem(out, name, rounded) < 0) {
            Py_XDECREF(rounded);
            Py_DECREF(out);
            return NULL;
        }
        Py_DECREF(rounded);
    }
    return out;
}

static PyMethodDef methods[] = {
    {"add", (PyCFunction)(void (*)(void))bags_add, METH_FASTCALL, "add(values, other)"},
    {"subtract", (PyCFunction)(void (*)(void))bags_subtract, METH_FASTCALL,
     "subtract(values, other)"},
    {"subtract_all", (PyCFunction)(void (*)(void))bags_subtract_all, METH_FASTCALL,
     "subtract_all(values, others)"},
    {"total", (PyCFunction)(void (*)(void))bags_total, METH_FASTCALL, "total(start, bags)"},
    {"is_sufficient", (PyCFunction)(void (*)(void))bags_is_sufficient, METH_FASTCALL,
     "is_sufficient(values, request)"},
    {"increase_up_to", (PyCFunction)(void (*)(void))bags_increase_up_to, METH_FASTCALL,
     "increase_up_to(values, other)"},
    {"round_values", (PyCFunction)bags_round_values, METH_O, "round_values(values)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "loadmaster._bags",
    .m_doc = "Compiled arithmetic of resource bags (see resources.py).",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC
PyInit__bags(void)
{
    zero = PyFloat_FromDouble(0.0);
    two = PyLong_FromLong(2);
    PyObject *builtins = PyImport_ImportModule("builtins");
    if (zero == NULL || two == NULL || builtins == NULL) {
        Py_XDECREF(builtins);
        return NULL;
    }
    builtin_round = PyObject_GetAttrString(builtins, "round");
    Py_DECREF(builtins);
    if (builtin_round == NULL) {
        return NULL;
    }
    return PyModule_Create(&module);
}
