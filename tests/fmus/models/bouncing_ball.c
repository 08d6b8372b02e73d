/* A ball dropped from h with der(h) = v, der(v) = -g, bouncing on h = 0 with restitution e:
 * at impact v := -e v. The FMU locates each bounce inside doStep: after every RK4 sub-step that
 * ends below the floor, the crossing time is the root of the sub-step's trajectory (a quadratic,
 * which RK4 integrates exactly), the state is reset there and integration continues. When a
 * bounce leaves less than v_min the ball rests on the floor. Outputs: h, v, the number of
 * bounces and the time of the last one. */
#include <math.h>

#include "../common/model.h"

enum { H, DER_H, V, DER_V, G, E, BOUNCES, LAST_BOUNCE };
const ModelVar model_vars[] = {
    [H] = {VT_FLOAT64, SET_BEFORE_INIT}, [DER_H] = {VT_FLOAT64, SET_NEVER},
    [V] = {VT_FLOAT64, SET_BEFORE_INIT}, [DER_V] = {VT_FLOAT64, SET_NEVER},
    [G] = {VT_FLOAT64, SET_BEFORE_INIT}, [E] = {VT_FLOAT64, SET_BEFORE_INIT},
    [BOUNCES] = {VT_INT32, SET_NEVER},   [LAST_BOUNCE] = {VT_FLOAT64, SET_NEVER},
};
const size_t model_nvars = sizeof model_vars / sizeof *model_vars;

static const double kVMin = 1e-3;

void model_start(ModelInstance* m) {
  m->slots[H].r = 1.0;
  m->slots[V].r = 0.0;
  m->slots[G].r = 9.81;
  m->slots[E].r = 0.7;
  m->slots[BOUNCES].i = 0;
  m->slots[LAST_BOUNCE].r = 0.0;
}

static int resting(const ModelInstance* m) { return m->slots[H].r <= 0 && m->slots[V].r == 0; }

void model_calculate(ModelInstance* m) {
  m->slots[DER_H].r = m->slots[V].r;
  m->slots[DER_V].r = resting(m) ? 0.0 : -m->slots[G].r;
}

static void derivatives(const ModelInstance* m, double t, const double* x, double* dx) {
  (void)t;
  dx[0] = x[1];
  dx[1] = -m->slots[G].r;
}

StepResult model_step(ModelInstance* m, double t_end) {
  const double h_max = 1e-3, g = m->slots[G].r, e = m->slots[E].r;
  double x[2];
  x[0] = m->slots[H].r;
  x[1] = m->slots[V].r;
  while (m->time < t_end) {
    double h = t_end - m->time < h_max * 1.000001 ? t_end - m->time : h_max;
    double start[2];
    if (resting(m)) {
      m->time = t_end;
      break;
    }
    start[0] = x[0];
    start[1] = x[1];
    rk4_step(m, derivatives, m->time, h, x, 2);
    if (x[0] < 0 && start[1] - g * h < 0) {
      /* Root of start_h + start_v tau - g tau^2 / 2 in (0, h]: the bounce. */
      double disc = start[1] * start[1] + 2 * g * start[0];
      double tau = (start[1] + sqrt(disc > 0 ? disc : 0)) / g;
      double v_impact;
      if (tau > h) tau = h;
      if (tau < 0) tau = 0;
      v_impact = start[1] - g * tau;
      m->time += tau;
      m->slots[BOUNCES].i += 1;
      m->slots[LAST_BOUNCE].r = m->time;
      x[0] = 0;
      x[1] = -e * v_impact;
      m->slots[H].r = x[0];
      m->slots[V].r = x[1];
      if (x[1] < kVMin) {
        x[1] = 0;
        m->slots[V].r = 0;
      }
      continue; /* the rest of the sub-step starts from the bounce */
    }
    m->time = h == t_end - m->time ? t_end : m->time + h;
    m->slots[H].r = x[0];
    m->slots[V].r = x[1];
  }
  m->slots[H].r = x[0];
  m->slots[V].r = x[1];
  return STEP_OK;
}
