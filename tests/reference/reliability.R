# Reference values for gapscale's reliability and validity statistics (analysis/reliability.py),
# from lavaan, semTools and psych on public data.
# Run from the repository root: Rscript tests/reference/reliability.R
# Made with R 4, lavaan 0.6-14, semTools 0.5-6, psych 2.2.9.
#
# Data
#   tests/reference/holzinger_swineford.csv  lavaan::HolzingerSwineford1939, x1-x9 (written by
#                                            rotation.R; checked here to be the same numbers).
#   tests/reference/bfi_600.csv              first 600 rows of psych::bfi's 25 items, with NAs.
# Writes
#   tests/reference/reliability.json
#   tests/reference/reliability_partable_<model>.csv   parameterEstimates(fit, standardized = TRUE)
#       with dots in column names turned into underscores (std.all -> std_all), the parameter
#       tables the Python tests feed in, so they do not need a CFA engine.
suppressPackageStartupMessages({library(lavaan); library(semTools); library(psych); library(jsonlite)})

hs <- read.csv("tests/reference/holzinger_swineford.csv")
stopifnot(max(abs(as.matrix(hs) - as.matrix(HolzingerSwineford1939[, paste0("x", 1:9)]))) == 0)
bfi <- read.csv("tests/reference/bfi_600.csv")

models <- list(
  hs3 = "visual =~ x1 + x2 + x3\n textual =~ x4 + x5 + x6\n speed =~ x7 + x8 + x9",
  # x9 loads on visual too: semTools::AVE gives NA for both factors x9 indicates.
  hs3_cross = "visual =~ x1 + x2 + x3 + x9\n textual =~ x4 + x5 + x6\n speed =~ x7 + x8 + x9",
  # second-order factor: the first-order factors' variances come from the beta matrix.
  hs_second_order = "visual =~ x1 + x2 + x3\n textual =~ x4 + x5 + x6\n speed =~ x7 + x8 + x9\n g =~ visual + textual + speed"
)

partable <- function(fit) {
  pe <- parameterEstimates(fit, standardized = TRUE)
  if (is.null(pe$label)) pe$label <- ""
  pe <- pe[, c("lhs", "op", "rhs", "label", "est", "se", "z", "pvalue", "ci.lower", "ci.upper", "std.all")]
  names(pe) <- gsub(".", "_", names(pe), fixed = TRUE)
  pe
}
std_composite <- function(fit, f) {
  std <- standardizedSolution(fit)
  ov <- lavNames(fit, "ov")
  load <- std[std$op == "=~" & std$rhs %in% ov, ]
  theta <- std[std$op == "~~" & std$lhs == std$rhs & std$lhs %in% ov, ]
  sapply(unique(load$lhs), function(fn) {
    l <- load$est.std[load$lhs == fn]
    f(l, theta$est.std[match(load$rhs[load$lhs == fn], theta$lhs)])
  }, simplify = FALSE)
}
unname_vec <- function(v) as.list(setNames(as.numeric(v), names(v)))

out <- list(versions = list(lavaan = as.character(packageVersion("lavaan")),
                            semTools = as.character(packageVersion("semTools")),
                            psych = as.character(packageVersion("psych"))))
for (name in names(models)) {
  fit <- cfa(models[[name]], data = hs, estimator = "ML")
  write.csv(partable(fit), sprintf("tests/reference/reliability_partable_%s.csv", name),
            row.names = FALSE, na = "")
  out[[name]] <- list(
    model = models[[name]],
    # lavaan's sample covariance (ML, divisor n): the denominator of the obs.var = TRUE defaults
    sampstat_cov = unclass(lavInspect(fit, "sampstat")$cov),
    cov_lv = unclass(lavInspect(fit, "cov.lv")),
    comp_rel = unname_vec(compRelSEM(fit)),                         # default obs.var = TRUE
    comp_rel_implied = unname_vec(compRelSEM(fit, obs.var = FALSE)),
    ave = unname_vec(AVE(fit)),                                     # default obs.var = TRUE
    ave_implied = unname_vec(AVE(fit, obs.var = FALSE)),
    cor_lv = unclass(lavInspect(fit, "cor.lv")),
    # classic CR and AVE from the completely standardised solution (no semTools function):
    # (sum l*)^2 / ((sum l*)^2 + sum theta*) and sum l*^2 / (sum l*^2 + sum theta*)
    cr_std = std_composite(fit, function(l, th) sum(l)^2 / (sum(l)^2 + sum(th))),
    ave_std = std_composite(fit, function(l, th) sum(l^2) / (sum(l^2) + sum(th)))
  )
}

# HTMT: semTools defaults (htmt2 = TRUE: geometric means; absolute = TRUE; listwise deletion)
htmt_list <- function(m) list(factors = rownames(m), matrix = unclass(m))
out$htmt <- list(
  hs3 = htmt_list(htmt(models$hs3, data = hs)),
  hs3_arithmetic = htmt_list(htmt(models$hs3, data = hs, htmt2 = FALSE)),
  bfi_ac = htmt_list(htmt("A =~ A1 + A2 + A3 + A4 + A5\n C =~ C1 + C2 + C3 + C4 + C5\n N =~ N1 + N2 + N3 + N4 + N5", data = bfi)),
  bfi_ac_arithmetic = htmt_list(htmt("A =~ A1 + A2 + A3 + A4 + A5\n C =~ C1 + C2 + C3 + C4 + C5\n N =~ N1 + N2 + N3 + N4 + N5",
                                     data = bfi, htmt2 = FALSE))
)

# psych::alpha: raw and standardised alpha, Feldt's and Duhachek's 95% limits, item statistics
alpha_ref <- function(x, keys = NULL) {
  a <- if (is.null(keys)) psych::alpha(x, warnings = FALSE) else psych::alpha(x, keys = keys, warnings = FALSE)
  list(
    items = colnames(x), n = nrow(x),
    total = as.list(a$total),
    feldt = list(lower = a$feldt$lower.ci[[1]], upper = a$feldt$upper.ci[[1]]),
    duhachek = list(lower = a$total$raw_alpha - 1.96 * a$total$ase,
                    upper = a$total$raw_alpha + 1.96 * a$total$ase),
    item_stats = as.list(a$item.stats),
    alpha_drop = as.list(a$alpha.drop)
  )
}
out$alpha <- list(
  visual = alpha_ref(hs[, c("x1", "x2", "x3")]),
  textual = alpha_ref(hs[, c("x4", "x5", "x6")]),
  speed = alpha_ref(hs[, c("x7", "x8", "x9")]),
  two_items = alpha_ref(hs[, c("x1", "x2")]),
  # bfi agreeableness with NAs (pairwise covariances), A1 reverse-keyed as in psych's keys
  bfi_a_keyed = alpha_ref(bfi[, paste0("A", 1:5)], keys = c("A1")),
  bfi_c_keyed = alpha_ref(bfi[, paste0("C", 1:5)], keys = c("C4", "C5"))
)

# Harman's single-factor test: share of the total variance of the first principal component
harman <- function(x) {
  r <- cor(x, use = "pairwise")
  ev <- eigen(r)$values[1]
  list(items = colnames(x), eigenvalue = ev, share = ev / ncol(x),
       principal_share = principal(r, nfactors = 1, rotate = "none")$Vaccounted["Proportion Var", 1])
}
out$harman <- list(hs = harman(hs), bfi = harman(bfi))

writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, na = "null"), "tests/reference/reliability.json")
