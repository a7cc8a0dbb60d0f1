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
  resid_error <- NULL  # lavaan 0.6-14 has no standardized residuals with continuous and ordered items
  rs <- tryCatch(resid(fit, type = "standardized"), error = function(e) {resid_error <<- conditionMessage(e); NULL})
  if (ngroups == 1) rs <- list(rs)
  if (!is.null(resid_error)) rs <- list()
  res <- lapply(rs, function(r) list(cov = unclass(r$cov), mean = if (is.null(r$mean)) NULL else unclass(r$mean),
                                        th = if (is.null(r$th)) NULL else as.list(unclass(r$th)),
                                        names = rownames(r$cov)))
  fm <- fitMeasures(fit)
  list(model = model, data = data_name, group = group, group_equal = group_equal,
       group_labels = lavInspect(fit, "group.label"),
       modindices = mi, std_residuals = res, resid_error = resid_error,
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

# FIML (missing = "ml"): hs_missing_cov.csv (written by engine_fiml.R: hs_missing.csv, 10% of the
# cells missing, with school, sex and ageyr, ageyr missing in 6 rows). lavaan's EM for the
# saturated moments (the residuals are EM moments minus implied ones) run to 1e-12, as the engine's.
hsm <- read.csv("tests/reference/hs_missing_cov.csv")
MIMIC_X <- '
  visual  =~ x1 + x2 + x3
  textual =~ x4 + x5 + x6
  visual + textual ~ ageyr + sex
'
tight <- list(em.h1.tol = 1e-12, em.h1.iter.max = 100000L)
fiml <- function(fun, model, ...) do.call(fun, c(list(model, data = hsm, missing = "ml"), tight, list(...)))
with_opts <- function(x, ...) c(x, list(...))
out$cases$hs3_fiml <- with_opts(record(fiml("cfa", HS), HS, "hs_missing_cov.csv"), missing = "fiml")
out$cases$hs_school_fiml <- with_opts(record(fiml("cfa", HS, group = "school"), HS, "hs_missing_cov.csv", "school"),
                                      missing = "fiml")
out$cases$hs_school_fiml_metric <- with_opts(record(fiml("cfa", HS, group = "school", group.equal = "loadings"), HS,
                                                    "hs_missing_cov.csv", "school", "loadings"), missing = "fiml")
out$cases$mimic_fiml <- with_opts(record(fiml("sem", MIMIC_X), MIMIC_X, "hs_missing_cov.csv"), missing = "fiml")
# robust ML: complete data (MLR, MLM) and FIML (MLR)
out$cases$hs3_mlr <- with_opts(record(cfa(HS, data = hs, estimator = "MLR"), HS, "hs_engine.csv"), estimator = "MLR")
out$cases$hs3_mlm <- with_opts(record(cfa(HS, data = hs, estimator = "MLM"), HS, "hs_engine.csv"), estimator = "MLM")
out$cases$mimic_school_mlr <- with_opts(record(sem(MIMIC, data = hs, group = "school", estimator = "MLR"), MIMIC,
                                               "hs_engine.csv", "school"), estimator = "MLR")
out$cases$hs3_mlr_fiml <- with_opts(record(fiml("cfa", HS, estimator = "MLR"), HS, "hs_missing_cov.csv"),
                                    missing = "fiml", estimator = "MLR")

# WLSMV / ULSMV: bfi_1000.csv, 15 items ordered (6 categories), complete cases (lavaan's listwise)
bfi <- read.csv("tests/reference/bfi_1000.csv")
items <- c(paste0("A", 1:5), paste0("C", 1:5), paste0("E", 1:5))
BFI <- '
  agree =~ A1 + A2 + A3 + A4 + A5
  consc =~ C1 + C2 + C3 + C4 + C5
  extra =~ E1 + E2 + E3 + E4 + E5
'
BFI_SEM <- paste(BFI, "consc ~ agree\nextra ~ consc\n")
ord <- function(fun, model, estimator, group = NULL, ...) {
  args <- list(model, data = bfi[, c(items, group)], ordered = items, estimator = estimator, ...)
  if (!is.null(group)) args$group <- group
  do.call(fun, args)
}
wls <- function(x, estimator) c(x, list(estimator = estimator, ordered = items))
out$cases$cfa_wlsmv <- wls(record(ord("cfa", BFI, "WLSMV"), BFI, "bfi_1000.csv"), "WLSMV")
out$cases$cfa_ulsmv <- wls(record(ord("cfa", BFI, "ULSMV"), BFI, "bfi_1000.csv"), "ULSMV")
out$cases$sem_wlsmv <- wls(record(ord("sem", BFI_SEM, "WLSMV"), BFI_SEM, "bfi_1000.csv"), "WLSMV")
out$cases$mg_wlsmv <- wls(record(ord("cfa", BFI, "WLSMV", group = "gender", group.equal = c("thresholds", "loadings")),
                                 BFI, "bfi_1000.csv", "gender", c("thresholds", "loadings")), "WLSMV")
# missing = "pairwise" (bfi_1000.csv has unanswered items): thresholds on each item's answered
# cases, polychorics on each pair's
out$cases$cfa_wlsmv_pairwise <- wls(record(ord("cfa", BFI, "WLSMV", missing = "pairwise"), BFI, "bfi_1000.csv"),
                                    "WLSMV")
out$cases$cfa_wlsmv_pairwise$missing <- "pairwise"
# continuous and ordered indicators (hs_mixed.csv, written by engine_wls_mixed.R: x1-x3 cut into
# five categories, x4-x6 continuous); lavaan gives modification indices, not standardized residuals
MIXED <- "visual =~ x1 + x2 + x3\ntextual =~ x4 + x5 + x6"
mixed <- read.csv("tests/reference/hs_mixed.csv")
out$cases$mixed_wlsmv <- c(record(cfa(MIXED, data = mixed, ordered = c("x1", "x2", "x3"), estimator = "WLSMV"), MIXED,
                                  "hs_mixed.csv"),
                           list(estimator = "WLSMV", ordered = c("x1", "x2", "x3"), variables = paste0("x", 1:6)))
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, na = "null", matrix = "rowmajor", pretty = FALSE),
           "tests/reference/engine_diagnostics.json")
