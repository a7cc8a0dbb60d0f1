# Reference values for tests/test_engine_fiml.py: the SEM engine's FIML estimator
# (analysis/sem/fiml.py, lavaan's missing = "ml", alias "fiml") fed lavaan's own parameter tables.
# Run: Rscript tests/reference/engine_fiml.R   (from the repository root; lavaan 0.6-14)
# Writes tests/reference/hs_missing_cov.csv (hs_missing.csv with school, sex, ageyr; ageyr missing
# in 6 rows) and tests/reference/engine_fiml.json.
#
# Every case twice: with lavaan's defaults (its EM for the saturated model stops when no moment
# changes by more than 1e-5, em.h1.tol) and with em.h1.tol = 1e-12 ("_tight"): the chi-square, the
# unrestricted logl and the baseline depend on the EM moments; estimates and SEs do not.
suppressPackageStartupMessages({library(lavaan); library(jsonlite)})
hs <- HolzingerSwineford1939
hsm <- read.csv("tests/reference/hs_missing.csv")
hsm <- merge(hsm, hs[, c("id", "school", "sex", "ageyr")], by = "id", sort = FALSE)
hsm <- hsm[order(hsm$id), ]
set.seed(11)
hsm$ageyr[sample(nrow(hsm), 6)] <- NA  # fixed.x with missing covariates: lavaan drops those rows
write.csv(hsm, "tests/reference/hs_missing_cov.csv", row.names = FALSE, na = "")

HS <- '
  visual  =~ x1 + x2 + x3
  textual =~ x4 + x5 + x6
  speed   =~ x7 + x8 + x9
'
pe_cols <- c("lhs", "op", "rhs", "block", "group", "label", "est", "se", "z", "pvalue", "ci.lower", "ci.upper",
             "std.lv", "std.all")
pt_cols <- c("id", "lhs", "op", "rhs", "user", "block", "group", "free", "ustart", "exo", "label", "plabel", "start")

record <- function(fit, model, group = NULL) {
  pe <- parameterEstimates(fit, standardized = TRUE)
  if (!"block" %in% names(pe)) pe$block <- ifelse(pe$op %in% c("==", "<", ">", ":="), 0L, 1L)
  if (!"group" %in% names(pe)) pe$group <- pe$block
  if (!"label" %in% names(pe)) pe$label <- ""
  pe <- pe[, pe_cols]
  pt <- parTable(fit)[, pt_cols]
  opts <- lavInspect(fit, "options")
  fm <- fitMeasures(fit)
  list(model = model, group = group, group_labels = lavInspect(fit, "group.label"),
       partable = pt, parameters = pe, fit = as.list(fm[!is.na(fm)]),
       fit_na = names(fm)[is.na(fm)],
       nobs = lavInspect(fit, "nobs"), converged = lavInspect(fit, "converged"),
       information = opts$information, h1_information = opts$h1.information,
       em_tol = opts$h1.options$em.h1.tol,
       sampstat = lapply(if (is.null(group)) list(lavInspect(fit, "sampstat")) else lavInspect(fit, "sampstat"),
                         function(s) list(cov = unname(s$cov), mean = unname(s$mean))))
}

run <- function(name, model, fun = "cfa", group = NULL, ...) {
  for (tight in c(FALSE, TRUE)) {
    args <- list(model, data = hsm, missing = "ml", ...)
    if (!is.null(group)) args$group <- group
    if (tight) args$em.h1.tol <- 1e-12
    if (tight) args$em.h1.iter.max <- 100000L
    fit <- do.call(fun, args)
    out$cases[[paste0(name, if (tight) "_tight" else "")]] <<- record(fit, model, group)
  }
}

out <- list(lavaan = as.character(packageVersion("lavaan")), cases = list())

# 1. Holzinger & Swineford three-factor CFA, 10% of the cells missing.
run("hs3", HS)
# 2. Two groups (school) with equal loadings (group.equal = "loadings").
run("mg_loadings", HS, group = "school", group.equal = "loadings")
# 3. SEM with a MIMIC covariate and missing data: factors on observed covariates (fixed.x; the
#    rows with ageyr missing are dropped, as lavaan does), a regression among latents.
MIMIC <- paste(HS, '
  visual ~ sex + ageyr
  textual ~ visual + sex
  speed ~ textual
')
run("mimic", MIMIC, fun = "sem")
# 4. Intercepts: marker intercepts fixed at 0, latent means free, two intercepts equal by label.
INT <- paste(HS, '
  x1 ~ 0*1
  x4 ~ 0*1
  x7 ~ 0*1
  visual ~ 1
  textual ~ 1
  speed ~ 1
  x5 ~ b*1
  x6 ~ b*1
')
run("intercepts", INT)

writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, na = "null"), "tests/reference/engine_fiml.json")
