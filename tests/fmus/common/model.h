/* The contract between a test model (tests/fmus/models/<name>.c) and the FMI glue
 * (fmi2_glue.c, fmi3_glue.c) that turns it into an FMU. A model is written once and becomes an
 * FMI 2.0 and an FMI 3.0 co-simulation FMU by linking it with one glue or the other.
 *
 * Every variable lives in a slot indexed by its value reference (vr 0..model_nvars-1), so the
 * glue implements every getter and setter once. The model integrates itself inside model_step
 * with its own fixed sub-steps: that is what makes these co-simulation FMUs. */
#ifndef DOPPEL_TEST_FMUS_MODEL_H_
#define DOPPEL_TEST_FMUS_MODEL_H_

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
  VT_FLOAT64, /* FMI 2 Real */
  VT_FLOAT32,
  VT_INT8,
  VT_UINT8,
  VT_INT16,
  VT_UINT16,
  VT_INT32, /* FMI 2 Integer */
  VT_UINT32,
  VT_INT64,
  VT_UINT64,
  VT_BOOLEAN,
  VT_STRING,
  VT_ENUMERATION /* FMI 2 Integer, FMI 3 Int64 */
} VarType;

/* When the importer may set a variable (the FMU refuses other sets with an error). */
typedef enum {
  SET_NEVER,       /* outputs, locals */
  SET_BEFORE_INIT, /* fixed parameters, start values of states */
  SET_ALWAYS       /* inputs, tunable parameters */
} Settable;

typedef struct {
  VarType type;
  Settable settable;
} ModelVar;

typedef struct {
  double r;  /* Float64, Float32 */
  int64_t i; /* every integer kind and enumerations (UInt64 as its bits) */
  bool b;
  char* s; /* owned; allocated with the instance's allocator */
} Slot;

typedef enum { LOG_OK, LOG_WARNING, LOG_DISCARD, LOG_ERROR, LOG_FATAL } LogLevel;

typedef struct ModelInstance ModelInstance;
struct ModelInstance {
  const char* instance_name;
  double time;
  Slot* slots; /* model_nvars of them */
  bool initialized;
  /* Set by the glue. */
  void (*log)(ModelInstance* m, LogLevel level, const char* category, const char* message);
  void* (*alloc)(ModelInstance* m, size_t n);
  void (*dealloc)(ModelInstance* m, void* p);
  void* glue; /* the glue's own data */
};

/* What model_step reports. */
typedef enum { STEP_OK, STEP_TERMINATE, STEP_ERROR } StepResult;

/* Provided by each model. */
extern const ModelVar model_vars[];
extern const size_t model_nvars;
/* Writes the start values into the slots (at instantiation). */
void model_start(ModelInstance* m);
/* Computes outputs from inputs/states (after init, before every get). */
void model_calculate(ModelInstance* m);
/* Advances from m->time to t_end, setting m->time to the time reached (less than t_end only
 * with STEP_TERMINATE). STEP_ERROR: logged through m->log. */
StepResult model_step(ModelInstance* m, double t_end);

/* Helpers for models (common.c). */
void model_logf(ModelInstance* m, LogLevel level, const char* category, const char* format, ...);
/* One classic Runge-Kutta step of dx/dt = f(t, x) for n <= 8 states. */
typedef void (*DerivativeFn)(const ModelInstance* m, double t, const double* x, double* dx);
void rk4_step(const ModelInstance* m, DerivativeFn f, double t, double h, double* x, size_t n);

/* Shared by both glues (common.c). */
ModelInstance* instance_new(const char* name, void* glue, void* (*alloc)(ModelInstance*, size_t),
                            void (*dealloc)(ModelInstance*, void*),
                            void (*log)(ModelInstance*, LogLevel, const char*, const char*));
void instance_free(ModelInstance* m);
/* Replaces a string slot with a copy of `value`. */
bool instance_set_string(ModelInstance* m, size_t vr, const char* value);
/* true when vr is a variable of one of the accepted types; logs an error otherwise. */
bool instance_check_vr(ModelInstance* m, const char* function, uint64_t vr, const VarType* types,
                       size_t ntypes);
/* true when vr may be set now; logs an error otherwise. */
bool instance_check_settable(ModelInstance* m, const char* function, uint64_t vr);
/* Checks the communication point and runs model_step; the glue maps the result. */
StepResult instance_do_step(ModelInstance* m, double t, double h);

#endif /* DOPPEL_TEST_FMUS_MODEL_H_ */
