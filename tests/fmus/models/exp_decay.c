/* The test equation der(x) = -k x, x(0) = 1: x(t) = exp(-k t). */
#include "../common/model.h"

enum { X, DER_X, K };
const ModelVar model_vars[] = {
    [X] = {VT_FLOAT64, SET_BEFORE_INIT},
    [DER_X] = {VT_FLOAT64, SET_NEVER},
    [K] = {VT_FLOAT64, SET_BEFORE_INIT},
};
const size_t model_nvars = sizeof model_vars / sizeof *model_vars;

void model_start(ModelInstance* m) {
  m->slots[X].r = 1.0;
  m->slots[K].r = 1.0;
}

void model_calculate(ModelInstance* m) { m->slots[DER_X].r = -m->slots[K].r * m->slots[X].r; }

static void derivatives(const ModelInstance* m, double t, const double* x, double* dx) {
  (void)t;
  dx[0] = -m->slots[K].r * x[0];
}

StepResult model_step(ModelInstance* m, double t_end) {
  const double h_max = 1e-3;
  double x = m->slots[X].r;
  while (m->time < t_end) {
    double h = t_end - m->time < h_max * 1.000001 ? t_end - m->time : h_max;
    rk4_step(m, derivatives, m->time, h, &x, 1);
    m->time = h == t_end - m->time ? t_end : m->time + h;
  }
  m->slots[X].r = x;
  return STEP_OK;
}
