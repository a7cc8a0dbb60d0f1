# Reference values for the engine's WLSMV and ULSMV estimators (analysis/sem/wls.py), from
# lavaan 0.6-14 on psych::bfi Likert items (6 categories), tests/reference/bfi_1000.csv.
# Run from the repository root: Rscript tests/reference/engine_wls.R
# Writes tests/reference/engine_wls.json.
#
# Models (items A1-A5, C1-C5, E1-E5, all ordered; rows with a missing item dropped listwise,
# except the pairwise_* models):
#   cfa_wlsmv, cfa_ulsmv   three correlated factors;
#   sem_wlsmv, sem_ulsmv   the same factors with consc ~ a*agree, extra ~ b*consc (a full
#                          mediation, one df more than the CFA) and the indirect effect ind := a*b;
#   mg_configural, mg_thresholds_loadings
#                          two groups (gender), WLSMV: configural, and thresholds + loadings
#                          equal (lavaan's group.equal; delta parameterization); mg_ulsmv the
#                          latter by ULSMV;
#   ladder_configural, ladder_thresholds, ladder_loadings, ladder_intercepts
#                          the ordinal invariance ladder across gender as semTools builds it
#                          (measEq.syntax, ID.cat = "Wu.Estabrook.2016", ID.fac = "std.lv",
#                          parameterization delta), its parTable given to the engine as is;
#   pairwise_cfa_wlsmv, pairwise_sem_ulsmv, pairwise_mg
#                          missing = "pairwise" (the CFA by WLSMV with its wls.obs and gamma, the
#                          SEM by ULSMV, two groups with thresholds and loadings equal by WLSMV);
#   lrt                    lavTestLRT of nested pairs (WLSMV's scaled-and-shifted difference test).
suppressPackageStartupMessages({library(lavaan); library(semTools); library(jsonlite)})
stopifnot(packageVersion("lavaan") == "0.6.14")

d <- read.csv("tests/reference/bfi_1000.csv")
items <- c(paste0("A", 1:5), paste0("C", 1:5), paste0("E", 1:5))
meas <- "agree =~ A1 + A2 + A3 + A4 + A5
consc =~ C1 + C2 + C3 + C4 + C5
extra =~ E1 + E2 + E3 + E4 + E5"
sem_model <- paste(meas, "consc ~ a*agree
extra ~ b*consc
ind := a*b", sep = "\n")

measures <- c("npar", "fmin", "chisq", "df", "pvalue", "chisq.scaled", "df.scaled", "pvalue.scaled",
              "chisq.scaling.factor", "baseline.chisq", "baseline.df", "baseline.pvalue",
              "baseline.chisq.scaled", "baseline.df.scaled", "baseline.pvalue.scaled",
              "baseline.chisq.scaling.factor", "cfi", "tli", "cfi.scaled", "tli.scaled", "cfi.robust",
              "tli.robust", "rmsea", "rmsea.ci.lower", "rmsea.ci.upper", "rmsea.pvalue", "rmsea.scaled",
              "rmsea.ci.lower.scaled", "rmsea.ci.upper.scaled", "rmsea.pvalue.scaled", "rmsea.robust",
              "rmsea.ci.lower.robust", "rmsea.ci.upper.robust", "rmsea.pvalue.robust", "srmr", "wrmr", "gfi",
              "ntotal")

r_warnings <- list()
fits <- list()
collect <- function(expr, where) {
  withCallingHandlers(expr, warning = function(w) {
    r_warnings[[length(r_warnings) + 1L]] <<- paste0(where, ": ", conditionMessage(w))
    invokeRestart("muffleWarning")
  })
}

reference <- function(name, model, estimator, group = NULL, group.equal = "", missing = "listwise") {
  dd <- d[, c(items, if (!is.null(group)) group)]
  fit <- collect(sem(model, data = dd, ordered = items, estimator = estimator, group = group,
                     group.equal = group.equal, missing = missing), name)
  stopifnot(lavInspect(fit, "options")$missing == missing)
  opts <- lavInspect(fit, "options")
  stopifnot(opts$parameterization == "delta", opts$test == "scaled.shifted")
  fits[[name]] <<- fit
  fm <- fitMeasures(fit)
  fit_values <- setNames(lapply(measures, function(m) if (m %in% names(fm)) unname(fm[[m]]) else NA), measures)
  test <- lavInspect(fit, "test")$scaled.shifted
  pe <- parameterEstimates(fit, standardized = TRUE)
  if (is.null(pe$label)) pe$label <- ""
  if (is.null(pe$group)) pe$group <- 1L
  ss <- standardizedSolution(fit)
  pt <- parTable(fit)
  extra <- list()
  if (is.null(group) && missing == "pairwise") {
    gam <- lavInspect(fit, "gamma")
    if (is.list(gam)) gam <- gam[[1]]
    obs <- unlist(lavInspect(fit, "wls.obs"))
    extra <- list(wls_obs = unname(obs), wls_obs_names = names(obs), gamma_diag = unname(diag(gam)),
                  gamma_first_row = unname(gam[1, ]))
  }
  c(extra, list(model = model, estimator = estimator, missing = missing, group = if (is.null(group)) NA else group,
       group_equal = group.equal, group_labels = lavInspect(fit, "group.label"),
       fit = fit_values,
       test = list(stat = test$stat, scaling.factor = test$scaling.factor,
                   shift.parameter = test$shift.parameter, trace.UGamma = test$trace.UGamma,
                   trace.UGamma2 = test$trace.UGamma2),
       ntotal = lavInspect(fit, "ntotal"), nobs = lavInspect(fit, "nobs"),
       pe = pe[, c("lhs", "op", "rhs", "group", "label", "est", "se", "z", "pvalue", "std.all")],
       std_all_se = ss$se,
       partable = pt[, c("lhs", "op", "rhs", "block", "group", "free", "ustart", "exo", "label", "plabel")],
       shift_parameters = test$shift.parameter,
       optim = list(iterations = lavInspect(fit, "iterations"), converged = lavInspect(fit, "converged"))))
}

ladder <- function(name, equal) {
  dd <- d[, c(items, "gender")]
  fit <- collect(measEq.syntax(configural.model = meas, data = dd, ordered = items, parameterization = "delta",
                               ID.fac = "std.lv", ID.cat = "Wu.Estabrook.2016", group = "gender",
                               group.equal = equal, estimator = "WLSMV", return.fit = TRUE), name)
  fits[[name]] <<- fit
  fm <- fitMeasures(fit)
  fit_values <- setNames(lapply(measures, function(m) if (m %in% names(fm)) unname(fm[[m]]) else NA), measures)
  test <- lavInspect(fit, "test")$scaled.shifted
  pe <- parameterEstimates(fit, standardized = TRUE)
  ss <- standardizedSolution(fit)
  pt <- parTable(fit)
  list(model = meas, estimator = "WLSMV", group = "gender", group_equal = equal,
       group_labels = lavInspect(fit, "group.label"), fit = fit_values,
       test = list(stat = test$stat, scaling.factor = test$scaling.factor,
                   shift.parameter = test$shift.parameter),
       nobs = lavInspect(fit, "nobs"),
       pe = pe[, c("lhs", "op", "rhs", "group", "label", "est", "se", "z", "pvalue", "std.all")],
       std_all_se = ss$se,
       partable = pt[, c("lhs", "op", "rhs", "block", "group", "free", "ustart", "exo", "label", "plabel")],
       optim = list(iterations = lavInspect(fit, "iterations"), converged = lavInspect(fit, "converged")))
}

out <- list(
  lavaan = as.character(packageVersion("lavaan")),
  cfa_wlsmv = reference("cfa_wlsmv", meas, "WLSMV"),
  cfa_ulsmv = reference("cfa_ulsmv", meas, "ULSMV"),
  sem_wlsmv = reference("sem_wlsmv", sem_model, "WLSMV"),
  sem_ulsmv = reference("sem_ulsmv", sem_model, "ULSMV"),
  mg_configural = reference("mg_configural", meas, "WLSMV", group = "gender"),
  mg_thresholds_loadings = reference("mg_thresholds_loadings", meas, "WLSMV", group = "gender",
                                     group.equal = c("thresholds", "loadings")),
  mg_ulsmv = reference("mg_ulsmv", meas, "ULSMV", group = "gender", group.equal = c("thresholds", "loadings")),
  ladder_configural = ladder("ladder_configural", ""),
  ladder_thresholds = ladder("ladder_thresholds", "thresholds"),
  ladder_loadings = ladder("ladder_loadings", c("thresholds", "loadings")),
  ladder_intercepts = ladder("ladder_intercepts", c("thresholds", "loadings", "intercepts")),
  # missing = "pairwise": thresholds and polychorics on the available cases of bfi_1000.csv
  pairwise_cfa_wlsmv = reference("pairwise_cfa_wlsmv", meas, "WLSMV", missing = "pairwise"),
  pairwise_sem_ulsmv = reference("pairwise_sem_ulsmv", sem_model, "ULSMV", missing = "pairwise"),
  pairwise_mg = reference("pairwise_mg", meas, "WLSMV", group = "gender", group.equal = c("thresholds", "loadings"),
                          missing = "pairwise")
)
# Scaled-and-shifted chi-square difference tests of nested models (lavTestLRT's default for
# WLSMV: Satorra 2000, A.method = "delta", scaled.shifted = TRUE).
lrt <- function(less, more) {
  t <- collect(lavTestLRT(fits[[less]], fits[[more]]), paste(less, more))
  list(less = less, more = more, chisq_diff = t[2, "Chisq diff"], df_diff = t[2, "Df diff"],
       pvalue = t[2, "Pr(>Chisq)"])
}
out$lrt <- list(lrt("mg_configural", "mg_thresholds_loadings"),
                lrt("ladder_configural", "ladder_thresholds"),
                lrt("ladder_thresholds", "ladder_loadings"),
                lrt("ladder_loadings", "ladder_intercepts"),
                lrt("cfa_wlsmv", "sem_wlsmv"))
out$r_warnings <- r_warnings
write_json(out, "tests/reference/engine_wls.json", digits = NA, auto_unbox = TRUE, na = "null", pretty = TRUE)
