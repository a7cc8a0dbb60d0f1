# Reference values for tests/test_engine_composite.py: formative composites (<~) in the unified
# engine (analysis/sem/partable.py, model.py, engine.fit), ML, from lavaan 0.6-14.
# lavaan's treatment: the composite is a latent variable with zero disturbance variance
# (comp ~~ 0*comp), regressed on its formative indicators (the <~ weights, first one fixed to 1
# in the syntax to scale it); exogenous indicators are fixed.x covariates.
# Run from the repository root: Rscript tests/reference/engine_composite.R
# Writes tests/reference/engine_composite.json.
suppressPackageStartupMessages({library(lavaan); library(jsonlite)})
stopifnot(packageVersion("lavaan") == "0.6.14")
hs <- read.csv("tests/reference/hs_engine.csv")
pd <- read.csv("tests/reference/political_democracy.csv")

pe_cols <- c("lhs", "op", "rhs", "label", "est", "se", "z", "pvalue", "ci.lower", "ci.upper", "std.lv", "std.all")
fm_names <- c("npar", "fmin", "chisq", "df", "pvalue", "logl", "unrestricted.logl", "baseline.chisq", "baseline.df",
              "baseline.pvalue", "ntotal", "aic", "bic", "bic2", "cfi", "tli", "nnfi", "rni", "rmsea",
              "rmsea.ci.lower", "rmsea.ci.upper", "rmsea.pvalue", "srmr", "srmr_bentler", "gfi", "agfi", "ecvi")
pt_cols <- c("id", "lhs", "op", "rhs", "user", "block", "group", "free", "ustart", "exo", "label", "plabel")

models <- list(
  # a composite of three observed indicators predicting two reflective factors
  hs_predictor = list(data = "hs", model = "comp <~ 1*x1 + x2 + x3
visual =~ x4 + x5 + x6
textual =~ x7 + x8 + x9
visual ~ comp
textual ~ comp"),
  # a composite between two factors (predicted by one, predicting the other), scaled by x5
  hs_mediator = list(data = "hs", model = "visual =~ x1 + x2 + x3
speed =~ x7 + x8 + x9
comp <~ x4 + 1*x5 + x6
comp ~ visual
speed ~ comp"),
  # Political Democracy: industrialisation as a composite of its indicators, labels and :=
  poldem = list(data = "pd", model = "ind60 <~ 1*x1 + x2 + x3
dem60 =~ y1 + y2 + y3 + y4
dem65 =~ y5 + y6 + y7 + y8
dem60 ~ a*ind60
dem65 ~ c*ind60 + b*dem60
y1 ~~ y5
y2 ~~ y6
ind := a*b")
)

out <- list(lavaan = as.character(packageVersion("lavaan")), cases = list())
for (name in names(models)) {
  m <- models[[name]]
  d <- if (m$data == "hs") hs else pd
  fit <- sem(m$model, data = d)
  stopifnot(lavInspect(fit, "converged"))
  pe <- parameterEstimates(fit, standardized = TRUE)
  if (!"label" %in% names(pe)) pe$label <- ""
  ss <- standardizedSolution(fit, type = "std.all")
  pe <- pe[, pe_cols]
  pe$std.all.se <- ss$se
  out$cases[[name]] <- list(model = m$model, data = m$data, partable = parTable(fit)[, pt_cols],
                            parameters = pe, fit = as.list(fitMeasures(fit, fm_names)))
}
write_json(out, "tests/reference/engine_composite.json", digits = NA, auto_unbox = TRUE, na = "null",
           pretty = TRUE)
