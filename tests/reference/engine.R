# Reference values for tests/test_engine.py: the SEM engine core (analysis/sem/model.py,
# estimate.py, inference.py) fed lavaan's own parameter tables, so the engine is checked
# independently of the syntax parser.
# Run: Rscript tests/reference/engine.R   (from the repository root; lavaan 0.6-14)
suppressPackageStartupMessages({library(lavaan); library(jsonlite)})
hs <- HolzingerSwineford1939
write.csv(hs[, c("id", "sex", "ageyr", "school", paste0("x", 1:9))], "tests/reference/hs_engine.csv", row.names = FALSE)
pd <- PoliticalDemocracy

HS <- '
  visual  =~ x1 + x2 + x3
  textual =~ x4 + x5 + x6
  speed   =~ x7 + x8 + x9
'
pe_cols <- c("lhs", "op", "rhs", "block", "group", "label", "est", "se", "z", "pvalue", "ci.lower", "ci.upper",
             "std.lv", "std.all")
fm_names <- c("npar", "chisq", "df", "pvalue", "logl", "unrestricted.logl", "baseline.chisq", "baseline.df",
              "baseline.pvalue", "ntotal", "aic", "bic", "bic2", "cfi", "tli", "rni", "rmsea", "rmsea.ci.lower",
              "rmsea.ci.upper", "rmsea.pvalue", "srmr", "srmr_bentler", "gfi", "agfi", "ecvi")
pt_cols <- c("id", "lhs", "op", "rhs", "user", "block", "group", "free", "ustart", "exo", "label", "plabel", "start")

record <- function(fit, model, data_name, group = NULL) {
  pe <- parameterEstimates(fit, standardized = TRUE)
  if (!"block" %in% names(pe)) pe$block <- ifelse(pe$op %in% c("==", "<", ">", ":="), 0L, 1L)
  if (!"group" %in% names(pe)) pe$group <- pe$block
  if (!"label" %in% names(pe)) pe$label <- ""
  ss_all <- standardizedSolution(fit, type = "std.all")
  ss_lv <- standardizedSolution(fit, type = "std.lv")
  pe <- pe[, pe_cols]
  pe$std.all.se <- ss_all$se
  pe$std.lv.se <- ss_lv$se
  pt <- parTable(fit)[, pt_cols]
  list(model = model, data = data_name, group = group,
       group_labels = lavInspect(fit, "group.label"),
       partable = pt, parameters = pe,
       fit = as.list(fitMeasures(fit, fm_names)),
       converged = lavInspect(fit, "converged"))
}

out <- list(lavaan = as.character(packageVersion("lavaan")), cases = list())

# 1. Holzinger & Swineford three-factor CFA; with std.lv; with meanstructure.
out$cases$hs3 <- record(cfa(HS, data = hs), HS, "hs")
out$cases$hs3_stdlv <- record(cfa(HS, data = hs, std.lv = TRUE), HS, "hs")
out$cases$hs3_mean <- record(cfa(HS, data = hs, meanstructure = TRUE), HS, "hs")

# 2. MIMIC: factors regressed on observed covariates (fixed.x = TRUE), and an indicator regressed
#    on a covariate (the indicator becomes a phantom latent in LISREL all-y form).
MIMIC <- paste(HS, '
  visual ~ sex + ageyr
  textual ~ sex + ageyr
  speed ~ ageyr
  x1 ~ ageyr
')
out$cases$mimic <- record(sem(MIMIC, data = hs), MIMIC, "hs")
out$cases$mimic_mean <- record(sem(MIMIC, data = hs, meanstructure = TRUE), MIMIC, "hs")

# 3. Political Democracy: labelled equal loadings, residual covariances, := effects.
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
  total := c1 + a1*b1
  ratio := a1*b1 / (c1 + a1*b1)
'
out$cases$poldem <- record(sem(PD, data = pd), PD, "pd")

# 4. An observed-variable path model (observed y regressed on observed x and on another y).
PATH <- '
  y1 ~ a*x1 + x2
  y5 ~ b*y1 + x1
  ab := a*b
'
out$cases$path <- record(sem(PATH, data = pd), PATH, "pd")

# 4b. An observed variable covarying with latents (it becomes a phantom latent too).
OVLV <- '
  visual  =~ x1 + x2 + x3
  textual =~ x4 + x5 + x6
  x7 ~~ visual + textual
'
out$cases$ovlv <- record(sem(OVLV, data = hs), OVLV, "hs")

# 5. Intercepts, a linear == constraint with arithmetic, and an active > bound.
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
out$cases$constr <- record(sem(CONSTR, data = hs), CONSTR, "hs")
# An inactive bound (the unconstrained estimate already satisfies it) and a nonlinear ==.
CONSTR2 <- '
  visual  =~ x1 + b2*x2 + b3*x3
  textual =~ x4 + b5*x5 + b6*x6
  speed   =~ x7 + x8 + x9
  b3 == b2^2 + 0.4
  b6 > 0.5
'
out$cases$constr2 <- record(sem(CONSTR2, data = hs), CONSTR2, "hs")

# 6. Two groups (school), loadings and intercepts equal (lavaan writes the equalities as == rows).
out$cases$mg <- record(cfa(HS, data = hs, group = "school", group.equal = c("loadings", "intercepts")), HS, "hs", "school")
out$cases$mg_free <- record(cfa(HS, data = hs, group = "school"), HS, "hs", "school")

# 7. Observed information (the Hessian) for the standard errors.
out$cases$hs3_observed <- record(cfa(HS, data = hs, information = "observed"), HS, "hs")
out$cases$poldem_observed <- record(sem(PD, data = pd, information = "observed"), PD, "pd")

# 8. Identification failures: what lavaan says.
warn_of <- function(expr) {
  msgs <- character(0)
  fit <- withCallingHandlers(expr, warning = function(w) { msgs <<- c(msgs, conditionMessage(w)); invokeRestart("muffleWarning") })
  list(warnings = msgs, df = unname(fitMeasures(fit, "df")), npar = unname(fitMeasures(fit, "npar")),
       partable = parTable(fit)[, pt_cols])
}
NONREC <- '
  A =~ x1 + x2 + x3
  B =~ x4 + x5 + x6
  A ~ B
  B ~ A
  A ~~ B
'
TWO <- 'f =~ x1 + x2'
NEGDF <- '
  x1 ~ x2
  x2 ~ x1
  x1 ~~ x2
'
out$unidentified <- list(
  nonrec = c(list(model = NONREC), warn_of(sem(NONREC, data = hs))),
  two_indicators = c(list(model = TWO), warn_of(cfa(TWO, data = hs))),
  negative_df = c(list(model = NEGDF), warn_of(sem(NEGDF, data = hs)))
)

writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, na = "null", null = "null", pretty = TRUE),
           "tests/reference/engine.json")
