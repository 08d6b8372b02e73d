/* The Van der Pol oscillator der(x0) = x1, der(x1) = mu (1 - x0^2) x1 - x0, x(0) = (2, 0); its
 * limit cycle has period 6.6633 for mu = 1. */
#include "../common/model.h"

enum { X0, DER_X0, X1, DER_X1, MU };
const ModelVar model_vars[] = {
    [X0] = {VT_FLOAT64, SET_BEFORE_INIT}, [DER_X0] = {VT_FLOAT64, SET_NEVER},
    [X1] = {VT_FLOAT64, SET_BEFORE_INIT}, [DER_X1] = {VT_FLOAT64, SET_NEVER},
    [MU] = {VT_FLOAT64, SET_BEFORE_INIT},
};
const size_t model_nvars = sizeof model_vars / sizeof *model_vars;

void model_start(ModelInstance* m) {
  m->slots[X0].r = 2.0;
  m->slots[X1].r = 0.0;
  m->slots[MU].r = 1.0;
}

static void derivatives(const ModelInstance* m, double t, const double* x, double* dx) {
  (void)t;
  dx[0] = x[1];
  dx[1] = m->slots[MU].r * (1 - x[0] * x[0]) * x[1] - x[0];
}

void model_calculate(ModelInstance* m) {
  double x[2], dx[2];
  x[0] = m->slots[X0].r;
  x[1] = m->slots[X1].r;
  derivatives(m, m->time, x, dx);
  m->slots[DER_X0].r = dx[0];
  m->slots[DER_X1].r = dx[1];
}

StepResult model_step(ModelInstance* m, double t_end) {
  const double h_max = 1e-3;
  double x[2];
  x[0] = m->slots[X0].r;
  x[1] = m->slots[X1].r;
  while (m->time < t_end) {
    double h = t_end - m->time < h_max * 1.000001 ? t_end - m->time : h_max;
    rk4_step(m, derivatives, m->time, h, x, 2);
    m->time = h == t_end - m->time ? t_end : m->time + h;
  }
  m->slots[X0].r = x[0];
  m->slots[X1].r = x[1];
  return STEP_OK;
}
