/* The redaction prefilter's work on protobuf wire bytes after its Hyperscan pass (prefilter.py):
 * where a message's records are, which record each match lies in, and which parts of a record hold
 * a hit. In Python this cost ~0.15 us a field walked and ~0.5 us a match (benchmarks/README.md,
 * "The prefilter's walks in C"). The rules stay in Python: a key string is judged by the callable
 * passed in.
 *
 * Malformed bytes raise ValueError, a read past the end IndexError, as the Python walk did;
 * `Prefilter.select` reads either as "does not walk" and the redactor then visits every record. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>

/* A position past every buffer: a length that points beyond the data compares as past any end, as
 * Python's unbounded ints did, without overflowing. */
#define PAST(len) ((Py_ssize_t)(len) + 1)

/* -- growable arrays --------------------------------------------------------------------------- */

typedef struct {
    Py_ssize_t *items;
    Py_ssize_t size, capacity;
} Positions;

static int
positions_append(Positions *array, Py_ssize_t value)
{
    if (array->size == array->capacity) {
        Py_ssize_t capacity = array->capacity ? array->capacity * 2 : 64;
        Py_ssize_t *items = PyMem_Realloc(array->items, (size_t)capacity * sizeof(Py_ssize_t));
        if (items == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        array->items = items;
        array->capacity = capacity;
    }
    array->items[array->size++] = value;
    return 0;
}

static PyObject *
positions_list(const Positions *array)
{
    PyObject *list = PyList_New(array->size);
    if (list == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < array->size; i++) {
        PyObject *item = PyLong_FromSsize_t(array->items[i]);
        if (item == NULL) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, i, item);
    }
    return list;
}

/* -- the wire format ----------------------------------------------------------------------------- */

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

/* -- the record structure ------------------------------------------------------------------------ */

/* A serialized TracesData or LogsData: field 1 resource groups, in them field 2 scope groups, in
 * them field 2 records (the same numbers for both signals). */
typedef struct {
    Positions scopes_per_resource, records_per_scope, starts, ends;
} Structure;

static void
structure_free(Structure *structure)
{
    PyMem_Free(structure->scopes_per_resource.items);
    PyMem_Free(structure->records_per_scope.items);
    PyMem_Free(structure->starts.items);
    PyMem_Free(structure->ends.items);
}

/* The groups at `depth` in data[position:end]: 0 the resource groups (field 1), 1 their scope groups
 * (field 2), 2 the records (field 2). A resource or scope group appends how many it holds to its
 * count list; a record, its byte range. */
static int
read_groups(Structure *structure, const uint8_t *data, Py_ssize_t len, Py_ssize_t position, Py_ssize_t end,
            int depth)
{
    uint64_t wanted = (uint64_t)(depth == 0 ? 1 : 2) << 3 | 2, tag;
    Py_ssize_t content;
    while (position < end) {
        if (read_field(data, len, position, &tag, &content, &position) < 0)
            return -1;
        if (position > end) {
            PyErr_SetString(PyExc_ValueError, "truncated field");
            return -1;
        }
        if (tag != wanted)
            continue;
        if (depth == 2) {
            if (positions_append(&structure->starts, content) < 0 || positions_append(&structure->ends, position) < 0)
                return -1;
            continue;
        }
        Positions *held = depth == 0 ? &structure->records_per_scope : &structure->starts;
        Positions *counts = depth == 0 ? &structure->scopes_per_resource : &structure->records_per_scope;
        Py_ssize_t before = held->size;
        if (read_groups(structure, data, len, content, position, depth + 1) < 0
            || positions_append(counts, held->size - before) < 0)
            return -1;
    }
    return 0;
}

static int
read_structure(Structure *structure, const uint8_t *data, Py_ssize_t len)
{
    return read_groups(structure, data, len, 0, len, 0);
}

/* -- the matches of the Hyperscan pass ---------------------------------------------------------------- */

typedef struct {
    unsigned int pattern;
    Py_ssize_t end;  /* one past the match's last byte */
} Match;

typedef struct {
    PyObject_HEAD
    Match *items;
    Py_ssize_t size, capacity;
} MatchesObject;

static void
matches_dealloc(MatchesObject *self)
{
    PyMem_Free(self->items);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* Hyperscan's match handler: (pattern id, start, end, flags, context); keeps the id and the end. */
static PyObject *
matches_call(MatchesObject *self, PyObject *args, PyObject *kwargs)
{
    if (kwargs != NULL || PyTuple_GET_SIZE(args) < 3) {
        PyErr_SetString(PyExc_TypeError, "Matches takes (pattern, start, end, ...)");
        return NULL;
    }
    unsigned long pattern = PyLong_AsUnsignedLong(PyTuple_GET_ITEM(args, 0));
    Py_ssize_t end = PyLong_AsSsize_t(PyTuple_GET_ITEM(args, 2));
    if (PyErr_Occurred())
        return NULL;
    if (self->size == self->capacity) {
        Py_ssize_t capacity = self->capacity ? self->capacity * 2 : 256;
        Match *items = PyMem_Realloc(self->items, (size_t)capacity * sizeof(Match));
        if (items == NULL)
            return PyErr_NoMemory();
        self->items = items;
        self->capacity = capacity;
    }
    self->items[self->size++] = (Match){(unsigned int)pattern, end};
    Py_RETURN_NONE;  /* None: Hyperscan goes on scanning */
}

static PyTypeObject MatchesType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "telemetry_pipeline.redaction._wire.Matches",
    .tp_doc = PyDoc_STR("Matches(): a Hyperscan match handler that keeps each match's pattern id and end."),
    .tp_basicsize = sizeof(MatchesObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_dealloc = (destructor)matches_dealloc,
    .tp_call = (ternaryfunc)matches_call,
};

/* -- which parts of a record to visit -------------------------------------------------------------- */

/* One hit in a record: its last byte, and whether its pattern is a key name's. */
typedef struct {
    Py_ssize_t offset;
    int is_key;
} Hit;

/* keys.get(number): a borrowed reference, NULL when absent (with no error set) or on error. */
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

typedef struct {
    uint64_t attribute_tag;
    PyObject *keys, *scanned, *is_rule_key;
} RecordKind;

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

/* The parts of the record in data[position:end] that need a visit for its hits (sorted, then one at
 * `end` that ends the walk): those holding a value hit, or a key name hit inside a key with a rule.
 * Sets *rest when another field of kind->scanned (name, status, events, links; a log's body) holds
 * one, and appends the indexes of the attributes that do to `attributes`. */
static int
record_parts(const uint8_t *data, Py_ssize_t len, Py_ssize_t position, Py_ssize_t end, const RecordKind *kind,
             const Hit *hits, Py_ssize_t count, int *rest, PyObject *attributes)
{
    Py_ssize_t attribute = 0, content;
    uint64_t tag;
    const Hit *hit = hits, *last = hits + count;  /* last: the one at `end` */
    *rest = 0;
    while (hit->offset < end) {
        if (read_field(data, len, position, &tag, &content, &position) < 0)
            return -1;
        if (hit->offset < position) {
            PyObject *field_keys = (tag & 7) == 2 ? keys_get(kind->keys, tag >> 3) : NULL;
            if (field_keys == NULL && PyErr_Occurred())
                return -1;
            if (field_keys != NULL && !PyDict_Check(field_keys))
                field_keys = NULL;  /* the record's own field is no key string */
            int needed = 0;
            for (; hit->offset < position; hit++) {
                if (hit == last) {  /* a field reaching past the record */
                    PyErr_SetString(PyExc_IndexError, "field past the record");
                    return -1;
                }
                /* A key name counts only inside a key with a rule, not in "GET /v1/session". */
                if (needed)
                    continue;
                if (!hit->is_key)
                    needed = 1;
                else if (field_keys != NULL) {
                    needed = in_rule_key(data, len, content, hit->offset, field_keys, kind->is_rule_key);
                    if (needed < 0)
                        return -1;
                }
            }
            if (needed && tag == kind->attribute_tag) {
                PyObject *index = PyLong_FromSsize_t(attribute);
                if (index == NULL || PyList_Append(attributes, index) < 0) {
                    Py_XDECREF(index);
                    return -1;
                }
                Py_DECREF(index);
            }
            else if (needed) {
                PyObject *number = PyLong_FromUnsignedLongLong(tag >> 3);
                if (number == NULL)
                    return -1;
                int contains = PySet_Contains(kind->scanned, number);
                Py_DECREF(number);
                if (contains < 0)
                    return -1;
                *rest |= contains;
            }
        }
        attribute += tag == kind->attribute_tag;
    }
    if (position > end) {
        PyErr_SetString(PyExc_ValueError, "field past the record");
        return -1;
    }
    return 0;
}

/* -- the selection ------------------------------------------------------------------------------- */

/* A match placed in its record, sortable by record, then last byte, then key names last (the order
 * Python's sort of (offset, is_key) pairs gave). */
typedef struct {
    Py_ssize_t record, offset;
    int is_key, container;
} Placed;

static int
compare_placed(const void *left, const void *right)
{
    const Placed *a = left, *b = right;
    if (a->record != b->record)
        return a->record < b->record ? -1 : 1;
    if (a->offset != b->offset)
        return a->offset < b->offset ? -1 : 1;
    return (a->is_key > b->is_key) - (a->is_key < b->is_key);
}

/* The index of the last item of sorted `items` that is <= value, or -1. */
static Py_ssize_t
last_at_most(const Py_ssize_t *items, Py_ssize_t size, Py_ssize_t value)
{
    Py_ssize_t low = 0, high = size;
    while (low < high) {
        Py_ssize_t middle = low + (high - low) / 2;
        if (items[middle] <= value)
            low = middle + 1;
        else
            high = middle;
    }
    return low - 1;
}

/* Appends (index in scope, parts) to hits[scope] for each record to visit; see `select`. */
static int
select_records(const uint8_t *data, Py_ssize_t len, const Structure *structure, const MatchesObject *matches,
               unsigned long first_key_id, Py_ssize_t max_depth, const RecordKind *kind, PyObject *hits)
{
    const Py_ssize_t *starts = structure->starts.items, *ends = structure->ends.items;
    Py_ssize_t records = structure->starts.size, scopes = structure->records_per_scope.size;
    Placed *placed = PyMem_Malloc((size_t)(matches->size ? matches->size : 1) * sizeof(Placed));
    Hit *record_hits = PyMem_Malloc((size_t)(matches->size + 1) * sizeof(Hit));
    Py_ssize_t *first_of_scope = PyMem_Malloc((size_t)(scopes + 1) * sizeof(Py_ssize_t));
    int failed = -1;
    if (placed == NULL || record_hits == NULL || first_of_scope == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    Py_ssize_t count = 0;
    for (Py_ssize_t i = 0; i < matches->size; i++) {
        Match match = matches->items[i];
        Py_ssize_t record = last_at_most(starts, records, match.end - 1);
        if (record < 0 || match.end > ends[record])
            continue;  /* outside records: resources and scopes are always visited */
        placed[count++] = (Placed){record, match.end - 1, match.pattern >= first_key_id, match.pattern == 0};
    }
    qsort(placed, (size_t)count, sizeof(Placed), compare_placed);
    first_of_scope[0] = 0;
    for (Py_ssize_t i = 0; i < scopes; i++)
        first_of_scope[i + 1] = first_of_scope[i] + structure->records_per_scope.items[i];

    for (Py_ssize_t i = 0; i < count;) {
        Py_ssize_t record = placed[i].record, containers = 0, n = 0;
        for (; i < count && placed[i].record == record; i++) {
            if (placed[i].container)
                containers++;
            else
                record_hits[n++] = (Hit){placed[i].offset, placed[i].is_key};
        }
        PyObject *parts;
        if (containers >= max_depth) {
            parts = Py_NewRef(Py_None);  /* as deep as max_depth: visited whole */
        }
        else if (n == 0) {
            continue;  /* container headers only, fewer than max_depth */
        }
        else {
            record_hits[n] = (Hit){ends[record], 0};
            PyObject *attributes = PyList_New(0);
            int rest;
            if (attributes == NULL
                || record_parts(data, len, starts[record], ends[record], kind, record_hits, n, &rest, attributes) < 0) {
                Py_XDECREF(attributes);
                goto done;
            }
            if (!rest && PyList_GET_SIZE(attributes) == 0) {
                Py_DECREF(attributes);
                continue;  /* only key names outside keys with a rule */
            }
            parts = Py_BuildValue("(ON)", rest ? Py_True : Py_False, attributes);
            if (parts == NULL)
                goto done;
        }
        Py_ssize_t scope = last_at_most(first_of_scope, scopes + 1, record);
        PyObject *entry = Py_BuildValue("(nN)", record - first_of_scope[scope], parts);
        if (entry == NULL || scope >= scopes || PyList_Append(PyList_GET_ITEM(hits, scope), entry) < 0) {
            if (entry != NULL && scope >= scopes)
                PyErr_SetString(PyExc_ValueError, "record past the last scope");
            Py_XDECREF(entry);
            goto done;
        }
        Py_DECREF(entry);
    }
    failed = 0;
done:
    PyMem_Free(placed);
    PyMem_Free(record_hits);
    PyMem_Free(first_of_scope);
    return failed;
}

PyDoc_STRVAR(select_doc,
"select(payload, matches, first_key_id, max_depth, attribute_tag, keys, scanned, is_rule_key)\n"
"-> (scopes_per_resource, records_per_scope, hits)\n\n"
"The records of a serialized TracesData or LogsData to visit after the Hyperscan pass that filled\n"
"`matches` (pattern 0: a map or array header; ids from first_key_id on: key names). hits[scope] lists\n"
"(index in the scope, parts) per record to visit: parts None for all of it (max_depth container\n"
"headers), else (rest, attribute indexes): prefilter.RecordParts. A key-name\n"
"hit counts only inside a key string (where RecordKind.keys says keys are) that is_rule_key(bytes)\n"
"accepts.");

static PyObject *
wire_select(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 8) {
        PyErr_SetString(PyExc_TypeError, "select takes 8 arguments");
        return NULL;
    }
    if (!PyObject_TypeCheck(args[1], &MatchesType) || !PyDict_Check(args[5]) || !PyAnySet_Check(args[6])) {
        PyErr_SetString(PyExc_TypeError, "select: matches a Matches, keys a dict, scanned a set");
        return NULL;
    }
    unsigned long first_key_id = PyLong_AsUnsignedLong(args[2]);
    Py_ssize_t max_depth = PyLong_AsSsize_t(args[3]);
    RecordKind kind = {PyLong_AsUnsignedLongLong(args[4]), args[5], args[6], args[7]};
    if (PyErr_Occurred())
        return NULL;
    Py_buffer view;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0)
        return NULL;
    Structure structure = {0};
    PyObject *hits = NULL, *scopes_per_resource = NULL, *records_per_scope = NULL, *result = NULL;
    if (read_structure(&structure, view.buf, view.len) < 0)
        goto done;
    hits = PyList_New(structure.records_per_scope.size);
    if (hits == NULL)
        goto done;
    for (Py_ssize_t i = 0; i < structure.records_per_scope.size; i++) {
        PyObject *scope = PyList_New(0);
        if (scope == NULL)
            goto done;
        PyList_SET_ITEM(hits, i, scope);
    }
    if (select_records(view.buf, view.len, &structure, (MatchesObject *)args[1], first_key_id, max_depth, &kind,
                       hits) < 0)
        goto done;
    scopes_per_resource = positions_list(&structure.scopes_per_resource);
    records_per_scope = scopes_per_resource ? positions_list(&structure.records_per_scope) : NULL;
    if (records_per_scope != NULL)
        result = PyTuple_Pack(3, scopes_per_resource, records_per_scope, hits);
done:
    Py_XDECREF(scopes_per_resource);
    Py_XDECREF(records_per_scope);
    Py_XDECREF(hits);
    structure_free(&structure);
    PyBuffer_Release(&view);
    return result;
}

static PyMethodDef wire_methods[] = {
    {"select", (PyCFunction)(void (*)(void))wire_select, METH_FASTCALL, select_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef wire_module = {
    PyModuleDef_HEAD_INIT, "_wire", "The redaction prefilter's work on protobuf wire bytes (see _wire.c).", -1,
    wire_methods,
};

PyMODINIT_FUNC
PyInit__wire(void)
{
    if (PyType_Ready(&MatchesType) < 0)
        return NULL;
    PyObject *module = PyModule_Create(&wire_module);
    if (module == NULL)
        return NULL;
    if (PyModule_AddObjectRef(module, "Matches", (PyObject *)&MatchesType) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
