/* der(x) = -x with failures on demand, for the importer's error paths:
 *   fail_at       doStep returns an error (with a log message) once the step reaches it;
 *   crash_at      doStep dereferences NULL (SIGSEGV) once the step reaches it;
 *   terminate_at  doStep stops there and asks the master to terminate.
 * Negative values (the defaults) disable each. */
#include "../common/model.h"

enum { X, FAIL_AT, CRASH_AT, TERMINATE_AT };
const ModelVar model_vars[] = {
    [X] = {VT_FLOAT64, SET_BEFORE_INIT},
    [FAIL_AT] = {VT_FLOAT64, SET_BEFORE_INIT},
    [CRASH_AT] = {VT_FLOAT64, SET_BEFORE_INIT},
    [TERMINATE_AT] = {VT_FLOAT64, SET_BEFORE_INIT},
};
const size_t model_nvars = sizeof model_vars / sizeof *model_vars;

void model_start(ModelInstance* m) {
  m->slots[X].r = 1.0;
  m->slots[FAIL_AT].r = -1;
  m->slots[CRASH_AT].r = -1;
  m->slots[TERMINATE_AT].r = -1;
}

void model_calculate(ModelInstance* m) { (void)m; }

static void derivatives(const ModelInstance* m, double t, const double* x, double* dx) {
  (void)m;
  (void)t;
  dx[0] = -x[0];
}

StepResult model_step(ModelInstance* m, double t_end) {
  const double fail_at = m->slots[FAIL_AT].r, crash_at = m->slots[CRASH_AT].r;
  double terminate_at = m->slots[TERMINATE_AT].r;
  double x = m->slots[X].r;
  StepResult result = STEP_OK;
  if (crash_at >= 0 && t_end >= crash_at) {
    /* A real access violation, not raise(): the pointer is volatile so that the compiler
     * cannot turn the store into a trap instruction. */
    int* volatile nowhere = NULL;
    *nowhere = 42;
  }
  if (fail_at >= 0 && t_end >= fail_at) {
    model_logf(m, LOG_ERROR, "logStatusError", "faulty: fail_at=%g reached (step to %g)", fail_at,
               t_end);
    return STEP_ERROR;
  }
  if (terminate_at >= 0 && t_end > terminate_at) {
    t_end = terminate_at > m->time ? terminate_at : m->time;
    result = STEP_TERMINATE;
    model_logf(m, LOG_OK, "logEvents", "faulty: terminating at %g", t_end);
  }
  while (m->time < t_end) {
    double h = t_end - m->time < 1e-3 * 1.000001 ? t_end - m->time : 1e-3;
    rk4_step(m, derivatives, m->time, h, &x, 1);
    m->time = h == t_end - m->time ? t_end : m->time + h;
  }
  m->slots[X].r = x;
  return result;
}
