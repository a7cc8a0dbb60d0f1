# Reference values for tests/test_engine_robust.py: the robust estimators of the SEM engine
# (analysis/sem/robust.py: MLR and MLM, complete data, any number of groups) fed lavaan's own
# parameter tables, and the Satorra-Bentler (2001) scaled chi-square difference test.
# Run: Rscript tests/reference/engine_robust.R   (from the repository root; lavaan 0.6-14)
# Data: tests/reference/hs_engine.csv (HolzingerSwineford1939, written by engine.R) and
# tests/reference/political_democracy.csv (PoliticalDemocracy).
suppressPackageStartupMessages({library(lavaan); library(jsonlite)})
hs <- HolzingerSwineford1939
pd <- PoliticalDemocracy

HS <- '
  visual  =~ x1 + x2 + x3
  textual =~ x4 + x5 + x6
  speed   =~ x7 + x8 + x9
'
PD <- '
  ind60 =~ x1 + x2 + x3
  dem60 =~ y1 + a*y2 + b*y3 + c*y4
  dem65 =~ y5 + a*y6 + b*y7 + c*y8
  dem60 ~ a1*ind60
  dem65 ~ c1*ind60 + b1*dem60
  y1 ~~ y5
  y2 ~~ y4 + y6
  y3 ~~ y7
  y4 ~~ y8
  y6 ~~ y8
  indirect := a1*b1
'
MIMIC <- paste(HS, '
  visual ~ sex + ageyr
  textual ~ sex + ageyr
  speed ~ ageyr
')
CONSTR <- '
  visual  =~ x1 + b2*x2 + b3*x3
  textual =~ x4 + b5*x5 + b6*x6
  speed   =~ x7 + x8 + x9
  x1 ~ 1
  x2 ~ i2*1
  x3 ~ 1
  b2 + b3 == 1.2
  b5 == 2*b6 - 0.8
  i2 > 6.2
'
CONSTR2 <- '
  visual  =~ x1 + b2*x2 + b3*x3
  textual =~ x4 + b5*x5 + b6*x6
  speed   =~ x7 + x8 + x9
  b3 == b2^2 + 0.4
  b6 > 0.5
'
pe_cols <- c("lhs", "op", "rhs", "block", "group", "label", "est", "se", "z", "pvalue")
pt_cols <- c("id", "lhs", "op", "rhs", "user", "block", "group", "free", "ustart", "exo", "label", "plabel", "start")

record <- function(fit, model, data_name, group = NULL) {
  pe <- parameterEstimates(fit)
  ss <- standardizedSolution(fit, type = "std.all")
  if (!"block" %in% names(pe)) pe$block <- ifelse(pe$op %in% c("==", "<", ">", ":="), 0L, 1L)
  if (!"group" %in% names(pe)) pe$group <- pe$block
  if (!"label" %in% names(pe)) pe$label <- ""
  test <- lavInspect(fit, "test")
  scaled <- test[[2]]
  fm <- fitMeasures(fit)
  opts <- lavInspect(fit, "options")
  list(model = model, data = data_name, group = group, group_labels = lavInspect(fit, "group.label"),
       estimator = opts$estimator, information = opts$information, se = opts$se, test = opts$test,
       partable = parTable(fit)[, pt_cols],
       parameters = cbind(pe[, pe_cols], std.all = ss$est.std, std.all.se = ss$se),
       fit = as.list(fm),
       scaled = list(test = scaled$test, stat = as.numeric(scaled$stat), df = scaled$df, scaling.factor = as.numeric(scaled$scaling.factor),
                     trace.UGamma = scaled$trace.UGamma,
                     scaling.factor.h1 = if (is.null(scaled$scaling.factor.h1)) NA else scaled$scaling.factor.h1,
                     scaling.factor.h0 = if (is.null(scaled$scaling.factor.h0)) NA else scaled$scaling.factor.h0),
       converged = lavInspect(fit, "converged"))
}

out <- list(lavaan = as.character(packageVersion("lavaan")), cases = list(), lrt = list())
out$cases$hs_mlr <- record(cfa(HS, data = hs, estimator = "MLR"), HS, "hs")
out$cases$hs_mlm <- record(cfa(HS, data = hs, estimator = "MLM"), HS, "hs")
out$cases$hs_mlr_mean <- record(cfa(HS, data = hs, estimator = "MLR", meanstructure = TRUE), HS, "hs")
# MLR with the expected information (lavaan then uses it for the SEs and the scaled test alike)
out$cases$hs_mlr_expected <- record(cfa(HS, data = hs, estimator = "MLR", information = "expected"), HS, "hs")
# Constraints: linear == with arithmetic and an active > bound; a nonlinear == and an inactive bound.
out$cases$constr_mlr <- record(sem(CONSTR, data = hs, estimator = "MLR"), CONSTR, "hs")
out$cases$constr2_mlm <- record(sem(CONSTR2, data = hs, estimator = "MLM"), CONSTR2, "hs")
out$cases$poldem_mlr <- record(sem(PD, data = pd, estimator = "MLR"), PD, "pd")
out$cases$poldem_mlm <- record(sem(PD, data = pd, estimator = "MLM"), PD, "pd")
out$cases$mimic_mlr <- record(sem(MIMIC, data = hs, estimator = "MLR"), MIMIC, "hs")
out$cases$mimic_mlm <- record(sem(MIMIC, data = hs, estimator = "MLM"), MIMIC, "hs")

# Two groups with fixed.x covariates (each group's own sample moments of sex and ageyr). nlminb stops
# 1e-4 short of the optimum in the intercepts (a flat direction: ageyr is ~13), and does not converge
# with a tighter rel.tol; the test's tolerances say so.
out$cases$mg_mimic_mlr <- record(sem(MIMIC, data = hs, group = "school", estimator = "MLR"), MIMIC, "hs", "school")
out$cases$mg_mimic_mlm <- record(sem(MIMIC, data = hs, group = "school", estimator = "MLM"), MIMIC, "hs", "school")

# Two groups (school): configural, metric and scalar, MLR and MLM.
mg <- list()
for (est in c("MLR", "MLM")) {
  conf <- cfa(HS, data = hs, group = "school", estimator = est)
  metr <- cfa(HS, data = hs, group = "school", group.equal = "loadings", estimator = est)
  scal <- cfa(HS, data = hs, group = "school", group.equal = c("loadings", "intercepts"), estimator = est)
  tag <- tolower(est)
  out$cases[[paste0("mg_configural_", tag)]] <- record(conf, HS, "hs", "school")
  out$cases[[paste0("mg_metric_", tag)]] <- record(metr, HS, "hs", "school")
  out$cases[[paste0("mg_scalar_", tag)]] <- record(scal, HS, "hs", "school")
  for (pair in list(c("metric", "configural"), c("scalar", "metric"))) {
    m0 <- if (pair[1] == "metric") metr else scal
    m1 <- if (pair[2] == "configural") conf else metr
    lrt <- lavTestLRT(m0, m1, method = "satorra.bentler.2001")
    out$lrt[[paste(pair[1], pair[2], tag, sep = "_")]] <- list(
      restricted = paste0("mg_", pair[1], "_", tag), general = paste0("mg_", pair[2], "_", tag),
      chisq_diff = lrt[["Chisq diff"]][2], df_diff = lrt[["Df diff"]][2], pvalue = lrt[["Pr(>Chisq)"]][2],
      # the difference test's scaling factor, (r0 c0 - r1 c1) / (r0 - r1), from the fits' own values
      scaling_factor = (fitMeasures(m0, "df") * fitMeasures(m0, "chisq.scaling.factor") -
                        fitMeasures(m1, "df") * fitMeasures(m1, "chisq.scaling.factor")) /
                       (fitMeasures(m0, "df") - fitMeasures(m1, "df")))
  }
}
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, na = "null", pretty = TRUE), "tests/reference/engine_robust.json")
