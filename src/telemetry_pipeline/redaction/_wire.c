/* The redaction prefilter's walks over protobuf wire bytes (prefilter.py): where a message's records
 * are, and which parts of a record hold a hit. Python did this per field at ~0.15 us a field, a
 * seventh of the core's time per span (benchmarks/README.md, "The prefilter's walks in C"); the
 * rules stay in Python: a key string is judged by the callable passed in.
 *
 * Errors as the Python walk raised them, which `Prefilter.select` reads as "does not walk":
 * ValueError for malformed bytes, IndexError for a read past the end. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

/* A position past every buffer: a length or varint that points beyond the data compares as past
 * any end, as Python's unbounded ints did, without overflowing. */
#define PAST(len) ((Py_ssize_t)(len) + 1)

static int
read_varint(const uint8_t *data, Py_ssize_t len, Py_ssize_t *position, uint64_t *value)
{
    Py_ssize_t p = *position;
    uint64_t result = 0;
    int shift = 0, lost = 0;
    for (;;) {
        if (p >= len) {
            PyErr_SetString(PyExc_IndexError, "varint past the end");
            return -1;
        }
        uint8_t byte = data[p++];
        if (byte >= 0x80 && shift > 63) {
            PyErr_SetString(PyExc_ValueError, "varint too long");
            return -1;
        }
        uint64_t bits = byte & 0x7F;
        if (shift >= 64)
            lost |= bits != 0;
        else {
            if (shift > 57)
                lost |= (bits >> (64 - shift)) != 0;
            result |= bits << shift;
        }
        if (byte < 0x80)
            break;
        shift += 7;
    }
    /* Python's ints kept every bit; a value this wide only ever serves as a length or a field
     * number that is out of range: saturate it, keeping the wire type's three bits. */
    *value = lost ? UINT64_MAX << 3 | (result & 7) : result;
    *position = p;
    return 0;
}

/* The field at `position`: its tag, where its content starts and the position after it. */
static int
read_field(const uint8_t *data, Py_ssize_t len, Py_ssize_t position, uint64_t *tag,
           Py_ssize_t *content, Py_ssize_t *after)
{
    if (read_varint(data, len, &position, tag) < 0)
        return -1;
    uint64_t size;
    switch (*tag & 7) {
    case 2:
        if (read_varint(data, len, &position, &size) < 0)
            return -1;
        *content = position;
        *after = size > (uint64_t)(len - position) ? PAST(len) : position + (Py_ssize_t)size;
        return 0;
    case 0:
        *content = position;
        if (read_varint(data, len, &position, &size) < 0)
            return -1;
        *after = position;
        return 0;
    case 1:
        *content = position;
        *after = position + 8 > len ? PAST(len) : position + 8;
        return 0;
    case 5:
        *content = position;
        *after = position + 4 > len ? PAST(len) : position + 4;
        return 0;
    default:
        PyErr_SetString(PyExc_ValueError, "group or invalid wire type");
        return -1;
    }
}

static int
append_ssize(PyObject *list, Py_ssize_t value)
{
    PyObject *item = PyLong_FromSsize_t(value);
    if (item == NULL)
        return -1;
    int failed = PyList_Append(list, item);
    Py_DECREF(item);
    return failed;
}

/* Calls `visit(start, end)` for each length-delimited field `number` in data[position:end]. */
typedef int (*range_visitor)(void *state, Py_ssize_t start, Py_ssize_t end);

static int
each_length_delimited(const uint8_t *data, Py_ssize_t len, Py_ssize_t position, Py_ssize_t end,
                      uint64_t number, range_visitor visit, void *state)
{
    uint64_t wanted = number << 3 | 2, tag;
    Py_ssize_t content;
    while (position < end) {
        if (read_field(data, len, position, &tag, &content, &position) < 0)
            return -1;
        if (position > end) {
            PyErr_SetString(PyExc_ValueError, "truncated field");
            return -1;
        }
        if (tag == wanted && visit(state, content, position) < 0)
            return -1;
    }
    return 0;
}

typedef struct {
    const uint8_t *data;
    Py_ssize_t len;
    PyObject *scopes_per_resource, *records_per_scope, *starts, *ends;
} Walk;

static int
visit_record(void *state, Py_ssize_t start, Py_ssize_t end)
{
    Walk *walk = state;
    return append_ssize(walk->starts, start) < 0 || append_ssize(walk->ends, end) < 0 ? -1 : 0;
}

static int
visit_scope(void *state, Py_ssize_t start, Py_ssize_t end)
{
    Walk *walk = state;
    Py_ssize_t before = PyList_GET_SIZE(walk->starts);
    if (each_length_delimited(walk->data, walk->len, start, end, 2, visit_record, walk) < 0)
        return -1;
    return append_ssize(walk->records_per_scope, PyList_GET_SIZE(walk->starts) - before);
}

static int
visit_resource(void *state, Py_ssize_t start, Py_ssize_t end)
{
    Walk *walk = state;
    Py_ssize_t scopes_before = PyList_GET_SIZE(walk->records_per_scope);
    if (each_length_delimited(walk->data, walk->len, start, end, 2, visit_scope, walk) < 0)
        return -1;
    return append_ssize(walk->scopes_per_resource, PyList_GET_SIZE(walk->records_per_scope) - scopes_before);
}

PyDoc_STRVAR(walk_doc,
"walk(payload) -> (scopes_per_resource, records_per_scope, starts, ends)\n\n"
"The record structure of a serialized TracesData or LogsData (field 1 resource groups, field 2\n"
"scope groups, field 2 records: the same numbers for both): scopes per resource, records per\n"
"scope, and each record's byte range as parallel start and end lists. ValueError or IndexError\n"
"when malformed.");

static PyObject *
wire_walk(PyObject *module, PyObject *arg)
{
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    Walk walk = {view.buf, view.len, PyList_New(0), PyList_New(0), PyList_New(0), PyList_New(0)};
    PyObject *result = NULL;
    if (walk.scopes_per_resource && walk.records_per_scope && walk.starts && walk.ends
        && each_length_delimited(walk.data, walk.len, 0, walk.len, 1, visit_resource, &walk) == 0)
        result = PyTuple_Pack(4, walk.scopes_per_resource, walk.records_per_scope, walk.starts, walk.ends);
    Py_XDECREF(walk.scopes_per_resource);
    Py_XDECREF(walk.records_per_scope);
    Py_XDECREF(walk.starts);
    Py_XDECREF(walk.ends);
    PyBuffer_Release(&view);
    return result;
}

/* keys.get(number): a borrowed reference, Py_None for a key string, NULL (no error) when absent. */
static PyObject *
keys_get(PyObject *keys, uint64_t number)
{
    PyObject *key = PyLong_FromUnsignedLongLong(number);
    if (key == NULL)
        return NULL;
    PyObject *inner = PyDict_GetItemWithError(keys, key);
    Py_DECREF(key);
    return inner;
}

/* Whether byte `offset` of the message starting at `position` (where keys can be in it: `keys`)
 * lies in a key string with a rule: 1, 0, or -1 on error. */
static int
in_rule_key(const uint8_t *data, Py_ssize_t len, Py_ssize_t position, Py_ssize_t offset, PyObject *keys,
            PyObject *is_rule_key)
{
    uint64_t tag;
    Py_ssize_t content;
    while (position <= offset) {
        if (read_field(data, len, position, &tag, &content, &position) < 0)
            return -1;
        if ((tag & 7) != 2 || !(content <= offset && offset < position))
            continue;
        PyObject *inner = keys_get(keys, tag >> 3);
        if (inner == NULL)
            return PyErr_Occurred() ? -1 : 0;  /* a string value, bytes or an unknown field: no key */
        if (inner == Py_None) {
            if (position > len) {
                PyErr_SetString(PyExc_ValueError, "key past the end");
                return -1;
            }
            PyObject *raw = PyBytes_FromStringAndSize((const char *)data + content, position - content);
            if (raw == NULL)
                return -1;
            PyObject *known = PyObject_CallOneArg(is_rule_key, raw);
            Py_DECREF(raw);
            if (known == NULL)
                return -1;
            int truth = PyObject_IsTrue(known);
            Py_DECREF(known);
            return truth;
        }
        if (!PyDict_Check(inner)) {
            PyErr_SetString(PyExc_TypeError, "keys: a dict of dicts and None");
            return -1;
        }
        keys = inner;
        position = content;
    }
    return 0;
}

/* offsets[index] as (offset, is_key). */
static int
hit_at(PyObject *offsets, Py_ssize_t index, Py_ssize_t *offset, int *is_key)
{
    if (index >= PyList_GET_SIZE(offsets)) {
        PyErr_SetString(PyExc_IndexError, "hit past the record");
        return -1;
    }
    PyObject *hit = PyList_GET_ITEM(offsets, index);
    if (!PyTuple_Check(hit) || PyTuple_GET_SIZE(hit) != 2) {
        PyErr_SetString(PyExc_TypeError, "offsets: a list of (offset, is_key)");
        return -1;
    }
    *offset = PyLong_AsSsize_t(PyTuple_GET_ITEM(hit, 0));
    if (*offset == -1 && PyErr_Occurred())
        return -1;
    *is_key = PyObject_IsTrue(PyTuple_GET_ITEM(hit, 1));
    return *is_key < 0 ? -1 : 0;
}

PyDoc_STRVAR(record_parts_doc,
"record_parts(data, position, end, attribute_tag, keys, scanned, offsets, is_rule_key)\n"
"-> (rest, attributes)\n\n"
"The parts of the record in data[position:end] that need a visit for the hits in `offsets` (sorted\n"
"(last byte, is a key name) pairs): the indexes of the attributes holding a value hit, or a key name\n"
"hit inside a key with a rule (is_rule_key(key bytes)), and whether another field of `scanned` holds\n"
"one. `keys`: the record's fields (by number) where keys can be, as RecordKind.keys.");

static PyObject *
wire_record_parts(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 8) {
        PyErr_SetString(PyExc_TypeError, "record_parts takes 8 arguments");
        return NULL;
    }
    Py_ssize_t position = PyLong_AsSsize_t(args[1]), end = PyLong_AsSsize_t(args[2]);
    uint64_t attribute_tag = PyLong_AsUnsignedLongLong(args[3]);
    PyObject *keys = args[4], *scanned = args[5], *offsets = args[6], *is_rule_key = args[7];
    if (PyErr_Occurred())
        return NULL;
    if (!PyDict_Check(keys) || !PyAnySet_Check(scanned) || !PyList_Check(offsets)) {
        PyErr_SetString(PyExc_TypeError, "record_parts: keys a dict, scanned a set, offsets a list");
        return NULL;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0)
        return NULL;
    const uint8_t *data = view.buf;
    Py_ssize_t len = view.len;
    PyObject *attributes = PyList_New(0), *result = NULL;
    if (attributes == NULL)
        goto done;
    int rest = 0, is_key;
    Py_ssize_t attribute = 0, hit = 0, offset, content;
    uint64_t tag;
    if (hit_at(offsets, 0, &offset, &is_key) < 0)
        goto done;
    while (offset < end) {
        if (read_field(data, len, position, &tag, &content, &position) < 0)
            goto done;
        if (offset < position) {
            PyObject *field_keys = (tag & 7) == 2 ? keys_get(keys, tag >> 3) : NULL;
            if (field_keys == NULL && PyErr_Occurred())
                goto done;
            if (field_keys == Py_None)
                field_keys = NULL;  /* the record's own field is no key string */
            int needed = 0;
            while (offset < position) {
                /* A key name counts only inside a key with a rule, not in "GET /v1/session". */
                if (!needed) {
                    if (!is_key)
                        needed = 1;
                    else if (field_keys != NULL) {
                        if (!PyDict_Check(field_keys)) {
                            PyErr_SetString(PyExc_TypeError, "keys: a dict of dicts and None");
                            goto done;
                        }
                        needed = in_rule_key(data, len, content, offset, field_keys, is_rule_key);
                        if (needed < 0)
                            goto done;
                    }
                }
                if (hit_at(offsets, ++hit, &offset, &is_key) < 0)
                    goto done;
            }
            if (needed && tag == attribute_tag) {
                if (append_ssize(attributes, attribute) < 0)
                    goto done;
            }
            else if (needed) {
                PyObject *number = PyLong_FromUnsignedLongLong(tag >> 3);
                if (number == NULL)
                    goto done;
                int contains = PySet_Contains(scanned, number);
                Py_DECREF(number);
                if (contains < 0)
                    goto done;
                rest |= contains;
            }
        }
        attribute += tag == attribute_tag;
    }
    if (position > end) {
        PyErr_SetString(PyExc_ValueError, "field past the record");
        goto done;
    }
    result = Py_BuildValue("(OO)", rest ? Py_True : Py_False, attributes);
done:
    Py_XDECREF(attributes);
    PyBuffer_Release(&view);
    return result;
}

static PyMethodDef wire_methods[] = {
    {"walk", wire_walk, METH_O, walk_doc},
    {"record_parts", (PyCFunction)(void (*)(void))wire_record_parts, METH_FASTCALL, record_parts_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef wire_module = {
    PyModuleDef_HEAD_INIT, "_wire", "Protobuf wire walks of the redaction prefilter (see _wire.c).", -1,
    wire_methods,
};

PyMODINIT_FUNC
PyInit__wire(void)
{
    return PyModule_Create(&wire_module);
}
