/* Thin CPython entry point for the hot call (es_matmul): the buffer protocol and a released GIL cost
 * about 1 us per call, against about 10 us through ctypes (there are 7 matmuls per layer per token).
 * Everything else is reached through ctypes on the same shared object. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "eskernel.h"

static PyObject *py_matmul(PyObject *self, PyObject *args) {
    Py_buffer W, q, out;
    long long n, np_rows, kpb, t, k;
    int bits, offset, isa, threads;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*LLLiiy*LLw*ii", &W, &n, &np_rows, &kpb, &bits, &offset, &q, &t,
                          &k, &out, &isa, &threads))
        return NULL;
    int rc = -1;
    if (W.len >= np_rows * kpb && q.len >= t * k && out.len >= (Py_ssize_t)(t * n * 4)) {
        Py_BEGIN_ALLOW_THREADS
        rc = es_matmul((const uint8_t *)W.buf, n, np_rows, kpb, bits, offset, (const int8_t *)q.buf,
                       t, k, (int32_t *)out.buf, isa, threads);
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&W);
    PyBuffer_Release(&q);
    PyBuffer_Release(&out);
    return PyLong_FromLong(rc);
}

static PyMethodDef methods[] = {
    {"matmul", py_matmul, METH_VARARGS,
     "matmul(packed, n, np_rows, kpb, bits, offset, q, t, k, out, isa, threads) -> status"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_eskernel", NULL, -1, methods};

PyMODINIT_FUNC PyInit__eskernel(void) { return PyModule_Create(&module); }
