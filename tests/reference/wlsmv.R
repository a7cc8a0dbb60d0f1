# Reference values for gapscale's WLSMV CFA (analysis/wlsmv.py), from lavaan 0.6-14 on
# psych::bfi Likert items (6 categories), saved as tests/reference/bfi_600.csv and bfi_1000.csv.
# Run from the repository root: Rscript tests/reference/wlsmv.R
# Writes tests/reference/wlsmv.json.
#
# Models:
#   three   three correlated factors (agreeableness, conscientiousness, extraversion; 15 items)
#           on bfi_600 (41 incomplete rows dropped listwise, as lavaan does for WLSMV);
#   cross   two factors with a free first loading and a fixed variance (NA* / 1*), a cross
#           loading, two loadings made equal by a label and a residual covariance, on bfi_1000;
#   mixed   one factor of ten items of bfi_600 recoded to 2, 3 and 6 categories (binary items
#           give tetrachoric correlations; thresholds of different lengths): A1, C1, E1 binary
#           (value >= 4), A2, C2, E2 three categories (1-2, 3-4, 5-6), the rest unchanged.
#   small   one factor of A1..A5 (bfi_600), for the full asymptotic covariance matrix (NACOV).
suppressPackageStartupMessages({library(lavaan); library(jsonlite)})

measures <- c("npar", "chisq", "df", "pvalue", "chisq.scaled", "df.scaled", "pvalue.scaled",
              "chisq.scaling.factor", "chisq.shift.parameters", "baseline.chisq", "baseline.df",
              "baseline.pvalue", "baseline.chisq.scaled", "baseline.df.scaled", "baseline.pvalue.scaled",
              "baseline.chisq.scaling.factor", "cfi", "tli", "cfi.scaled", "tli.scaled", "cfi.robust",
              "tli.robust", "rmsea", "rmsea.ci.lower", "rmsea.ci.upper", "rmsea.pvalue", "rmsea.scaled",
              "rmsea.ci.lower.scaled", "rmsea.ci.upper.scaled", "rmsea.pvalue.scaled", "rmsea.robust",
              "rmsea.ci.lower.robust", "rmsea.ci.upper.robust", "rmsea.pvalue.robust", "srmr")

# Warnings lavaan gives while making a reference are kept in the JSON ("r_warnings"), not hidden.
# lavaan 0.6-14 warns "longer object length is not a multiple of shorter object length" in
# residuals(type = "standardized") when items have different numbers of thresholds (model
# "mixed"): it comes from the threshold part of the residuals (all 0); the correlation part
# is the one recorded.
collect <- function(expr, where) {
  withCallingHandlers(expr, warning = function(w) {
    r_warnings[[length(r_warnings) + 1L]] <<- paste0(where, ": ", conditionMessage(w))
    invokeRestart("muffleWarning")
  })
}

reference <- function(model, data) {
  fit <- cfa(model, data = data, ordered = TRUE, estimator = "WLSMV")
  opts <- lavInspect(fit, "options")
  stopifnot(opts$parameterization == "delta", opts$se == "robust.sem", opts$test == "scaled.shifted",
            opts$missing == "listwise")
  fm <- fitMeasures(fit)
  # fitMeasures of lavaan 0.6-14 has no chisq.shift.parameters: NA (null) for any name it lacks.
  fit_values <- setNames(lapply(measures, function(m) if (m %in% names(fm)) unname(fm[[m]]) else NA), measures)
  test <- lavInspect(fit, "test")$scaled.shifted
  pe <- parameterEstimates(fit, standardized = TRUE)
  if (is.null(pe$label)) pe$label <- ""
  ss <- standardizedSolution(fit)
  mi <- modindices(fit)
  list(model = model,
       fit = fit_values,
       test = list(stat = test$stat, scaling.factor = test$scaling.factor,
                   shift.parameter = test$shift.parameter, trace.UGamma = test$trace.UGamma,
                   trace.UGamma2 = test$trace.UGamma2),
       ntotal = lavInspect(fit, "ntotal"), norig = lavInspect(fit, "norig"),
       pe = pe[, c("lhs", "op", "rhs", "label", "est", "se", "z", "pvalue", "ci.lower", "ci.upper", "std.all")],
       std = ss[, c("lhs", "op", "rhs", "est.std", "se")],
       wls_obs = unname(lavInspect(fit, "wls.obs")),
       wls_obs_names = names(lavInspect(fit, "wls.obs")),
       wls_v = unname(diag(lavInspect(fit, "wls.v"))),
       implied = unname(lavInspect(fit, "implied")$cov),
       mi = mi[, c("lhs", "op", "rhs", "mi", "epc", "sepc.all")],
       std_resid = unname(collect(residuals(fit, type = "standardized"), "residuals")$cov),
       fit_object = fit)
}

bfi600 <- read.csv("tests/reference/bfi_600.csv")
bfi1000 <- read.csv("tests/reference/bfi_1000.csv")
mixed <- bfi600[, c("A1", "A2", "A3", "A4", "A5", "C1", "C2", "E1", "E2", "E3")]
for (v in c("A1", "C1", "E1")) mixed[[v]] <- as.integer(mixed[[v]] >= 4)
for (v in c("A2", "C2", "E2")) mixed[[v]] <- (mixed[[v]] + 1) %/% 2

models <- list(
  three = list(model = "agree =~ A1 + A2 + A3 + A4 + A5
                        consc =~ C1 + C2 + C3 + C4 + C5
                        extra =~ E1 + E2 + E3 + E4 + E5", data = bfi600),
  cross = list(model = "neuro =~ NA*N1 + N2 + N3 + N4 + N5
                        open =~ O1 + a*O3 + a*O4 + O2 + O5 + N4
                        neuro ~~ 1*neuro
                        N1 ~~ N2", data = bfi1000),
  mixed = list(model = "f =~ A1 + A2 + A3 + A4 + A5 + C1 + C2 + E1 + E2 + E3", data = mixed),
  small = list(model = "agree =~ A1 + A2 + A3 + A4 + A5", data = bfi600))

out <- list(lavaan_version = as.character(packageVersion("lavaan")),
            mixed_recoding = "A1, C1, E1: 1 if value >= 4 else 0; A2, C2, E2: (value + 1) %/% 2")
for (name in names(models)) {
  r_warnings <- list()
  ref <- collect(reference(models[[name]]$model, models[[name]]$data), "fit")
  ref$r_warnings <- unlist(r_warnings)
  if (name == "small") ref$nacov <- unname(lavInspect(ref$fit_object, "gamma"))
  ref$fit_object <- NULL
  out[[name]] <- ref
}
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, na = "null"), "tests/reference/wlsmv.json")
