/* Every input copied to its output: one pair per FMI type (FMI 2: Real, Integer, Boolean,
 * String, Enumeration; FMI 3: Float32, Float64, Int8 ... UInt64, Boolean, String,
 * Enumeration). Variable i*2 is an input, i*2+1 its output. */
#include "../common/model.h"

#define PAIR(t) \
  {t, SET_ALWAYS}, { t, SET_NEVER }
const ModelVar model_vars[] = {
#ifdef FMI3
    PAIR(VT_FLOAT32), PAIR(VT_FLOAT64), PAIR(VT_INT8),        PAIR(VT_UINT8), PAIR(VT_INT16),
    PAIR(VT_UINT16),  PAIR(VT_INT32),   PAIR(VT_UINT32),      PAIR(VT_INT64), PAIR(VT_UINT64),
    PAIR(VT_BOOLEAN), PAIR(VT_STRING),  PAIR(VT_ENUMERATION),
#else
    PAIR(VT_FLOAT64), PAIR(VT_INT32), PAIR(VT_BOOLEAN), PAIR(VT_STRING), PAIR(VT_ENUMERATION),
#endif
};
const size_t model_nvars = sizeof model_vars / sizeof *model_vars;

void model_start(ModelInstance* m) {
  size_t i;
  for (i = 0; i < model_nvars; ++i) {
    if (model_vars[i].type == VT_ENUMERATION) m->slots[i].i = 1; /* enumerations start at 1 */
  }
}

void model_calculate(ModelInstance* m) {
  size_t i;
  for (i = 0; i + 1 < model_nvars; i += 2) {
    if (model_vars[i].type == VT_STRING) {
      instance_set_string(m, i + 1, m->slots[i].s);
    } else {
      m->slots[i + 1] = m->slots[i];
      m->slots[i + 1].s = NULL;
    }
  }
}

StepResult model_step(ModelInstance* m, double t_end) {
  m->time = t_end;
  return STEP_OK;
}
