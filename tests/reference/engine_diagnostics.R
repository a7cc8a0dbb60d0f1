# Reference values for tests/test_engine_diagnostics.py: modification indices (modindices),
# standardized residuals (lavResiduals / resid(type = "standardized")) and the complete
# fitMeasures list of analysis/sem/diagnostics.py and analysis/sem/api.py, lavaan 0.6-14.
# Run: Rscript tests/reference/engine_diagnostics.R   (from the repository root)
suppressPackageStartupMessages({library(lavaan); library(jsonlite)})
hs <- read.csv("tests/reference/hs_engine.csv")
pd <- read.csv("tests/reference/political_democracy.csv")

HS <- '
  visual  =~ x1 + x2 + x3
  textual =~ x4 + x5 + x6
  speed   =~ x7 + x8 + x9
'
PD <- '
  ind60 =~ x1 + x2 + x3
  dem60 =~ y1 + y2 + y3 + y4
  dem65 =~ y5 + y6 + y7 + y8
  dem60 ~ ind60
  dem65 ~ ind60 + dem60
  y1 ~~ y5
  y2 ~~ y4 + y6
  y3 ~~ y7
  y4 ~~ y8
  y6 ~~ y8
'
record <- function(fit, model, data_name, group = NULL, group_equal = character(0)) {
  mi <- modindices(fit)
  if (!"group" %in% names(mi)) mi$group <- 1L
  mi <- mi[, c("lhs", "op", "rhs", "group", "mi", "epc", "sepc.lv", "sepc.all", "sepc.nox")]
  ngroups <- lavInspect(fit, "ngroups")
  sres <- lavResiduals(fit)  # type = "cor.bentler", summary ...; standardized residuals of the raw covariances:
  rs <- resid(fit, type = "standardized")
  if (ngroups == 1) rs <- list(rs)
  res <- lapply(rs, function(r) list(cov = unclass(r$cov), mean = if (is.null(r$mean)) NULL else unclass(r$mean),
                                        names = rownames(r$cov)))
  fm <- fitMeasures(fit)
  list(model = model, data = data_name, group = group, group_equal = group_equal,
       group_labels = lavInspect(fit, "group.label"),
       modindices = mi, std_residuals = res,
       fit = as.list(fm))
}
out <- list(lavaan = as.character(packageVersion("lavaan")), cases = list())
out$cases$hs3 <- record(cfa(HS, data = hs), HS, "hs_engine.csv")
out$cases$pd <- record(sem(PD, data = pd), PD, "political_democracy.csv")
out$cases$hs_school <- record(cfa(HS, data = hs, group = "school"), HS, "hs_engine.csv", "school")
out$cases$hs_school_metric <- record(cfa(HS, data = hs, group = "school", group.equal = "loadings"), HS,
                                     "hs_engine.csv", "school", "loadings")
MIMIC <- '
  visual  =~ x1 + x2 + x3
  textual =~ x4 + x5 + x6
  visual + textual ~ ageyr + sex
'
PATH <- '
  ind60 =~ x1 + x2 + x3
  dem60 =~ y1 + y2 + y3 + y4
  dem60 ~ ind60
  y5 ~ dem60
  y6 ~ y5
'
out$cases$mimic <- record(sem(MIMIC, data = hs), MIMIC, "hs_engine.csv")
out$cases$mimic_school <- record(sem(MIMIC, data = hs, group = "school"), MIMIC, "hs_engine.csv", "school")
out$cases$path <- record(sem(PATH, data = pd), PATH, "political_democracy.csv")
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, na = "null", matrix = "rowmajor", pretty = FALSE),
           "tests/reference/engine_diagnostics.json")
