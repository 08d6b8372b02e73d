/* A discrete counter: `counter` starts at 0 and goes up by one at every multiple of `period`
 * (time events). An event falling on the end of a step is handled in that step, so the output
 * at a communication point t is the value after the events at t (right limit). */
#include <math.h>

#include "../common/model.h"

enum { COUNTER, PERIOD };
const ModelVar model_vars[] = {
    [COUNTER] = {VT_INT32, SET_BEFORE_INIT},
    [PERIOD] = {VT_FLOAT64, SET_BEFORE_INIT},
};
const size_t model_nvars = sizeof model_vars / sizeof *model_vars;

void model_start(ModelInstance* m) {
  m->slots[COUNTER].i = 0;
  m->slots[PERIOD].r = 1.0;
}

void model_calculate(ModelInstance* m) { (void)m; }

StepResult model_step(ModelInstance* m, double t_end) {
  const double period = m->slots[PERIOD].r;
  const double eps = 1e-9 * (fabs(t_end) > 1 ? fabs(t_end) : 1);
  if (!(period > 0)) {
    model_logf(m, LOG_ERROR, "logStatusError", "stair: period %g is not positive", period);
    return STEP_ERROR;
  }
  /* The next event is (counter + 1) * period: computed from the count, never accumulated. */
  while ((double)(m->slots[COUNTER].i + 1) * period <= t_end + eps) {
    m->slots[COUNTER].i += 1;
  }
  m->time = t_end;
  return STEP_OK;
}
