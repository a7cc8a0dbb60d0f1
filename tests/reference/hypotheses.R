# Reference values for the hypotheses file's tests that are not one parameter's sign
# (analysis/hypotheses.py): lavaan 0.6-14 and semTools 0.5-6.
# Run from the repository root: Rscript tests/reference/hypotheses.R
# Reads tests/reference/bfi_1000.csv, hs_full.csv, hs_missing.csv and hs_sex.csv; writes
# tests/reference/hypotheses.json.
#
# 1. Distinct constructs (H8 `distinct: correlation_below`): the CFA of the two constructs alone,
#    latent variances fixed at 1 (std.lv), their correlation fixed at +-cutoff (the sign of its
#    estimate) against free, by lavTestLRT: semTools::discriminantValidity(fit, cutoff) (Ronkko &
#    Cho 2022: chi2(1) with cutoff 1, chi2(cut) with a cutoff below 1). psych::bfi items, FIML.
# 2. Directional group hypotheses (H7 `groups:`): a multigroup structural model, loadings equal,
#    regressions free in every group (the invariance stage's model with free paths); the contrast
#    mean(b in larger_in groups) - mean(b in than groups), equal weights, as a defined parameter
#    (:=, its delta-method SE is exact for a linear contrast) and as lavTestWald (chi2 = z^2);
#    one-sided p = pnorm(z, lower.tail = FALSE). Holzinger & Swineford (1939), four groups school x
#    sex, complete data (ML) and 10% missing cells (FIML).
suppressPackageStartupMessages({library(lavaan); library(semTools); library(jsonlite)})
out <- list(lavaan_version = as.character(packageVersion("lavaan")),
            semtools_version = as.character(packageVersion("semTools")))

# --- 1. Distinct constructs ------------------------------------------------------------------
bfi <- read.csv("tests/reference/bfi_1000.csv")
distinct <- function(model, cutoff, estimator = "ML") {
  fit <- do.call("cfa", list(model = model, data = quote(bfi), std.lv = TRUE, missing = "ml", estimator = estimator))  # literal arguments: update() re-evaluates the call
  dv <- discriminantValidity(fit, cutoff = cutoff)
  pe <- parameterEstimates(fit)
  r <- pe[pe$op == "~~" & pe$lhs != pe$rhs, ]
  list(model = model, cutoff = cutoff, estimator = estimator, cor = r$est,
       chisq = unname(fitMeasures(fit, "chisq")), df = unname(fitMeasures(fit, "df")),
       constrained_chisq = unname(fitMeasures(attr(dv, "constrained")[[1]], "chisq")),
       delta_chisq = dv$`Chisq diff`, delta_df = dv$`Df diff`, delta_pvalue = dv$`Pr(>Chisq)`)
}
negative <- "N =~ N1 + N2 + N3 + N4 + N5
E =~ E3 + E4 + E5"
close <- "Na =~ N1 + N2
Nb =~ N3 + N4 + N5"
out$distinct <- list(negative_1 = distinct(negative, 1), negative_09 = distinct(negative, 0.9),
                     negative_1_mlr = distinct(negative, 1, "MLR"), close_09 = distinct(close, 0.9),
                     close_1 = distinct(close, 1))

# --- 2. Directional group contrasts ----------------------------------------------------------
hs <- read.csv("tests/reference/hs_full.csv")
sex <- read.csv("tests/reference/hs_sex.csv")
stopifnot(all(sex$id == hs$id))
hs$g <- paste(hs$school, sex$sex, sep = "_")
hsm <- merge(read.csv("tests/reference/hs_missing.csv"), hs[, c("id", "g")], by = "id", sort = FALSE)
hsm <- hsm[order(match(hsm$id, hs$id)), ]
groups <- unique(hs$g)  # lavaan's group order: as they appear in the data
stopifnot(identical(groups, unique(hsm$g)))
measurement <- "visual =~ x1 + x2 + x3
textual =~ x4 + x5 + x6
speed =~ x7 + x8 + x9"
lab <- function(p) paste0("c(", paste0(p, ".", seq_along(groups), collapse = ", "), ")")
labelled <- paste(measurement, paste0("textual ~ ", lab("b1"), "*visual"),
                  paste0("speed ~ ", lab("b2"), "*visual + ", lab("b3"), "*textual"), sep = "\n")
contrast <- function(p, larger, than) {
  l <- paste0(p, ".", match(larger, groups)); t <- paste0(p, ".", match(than, groups))
  paste0("(", paste(l, collapse = " + "), ")/", length(l), " - (", paste(t, collapse = " + "), ")/", length(t))
}
contrasts <- list(
  list(path = "speed ~ textual", p = "b3", larger = c("Pasteur_1", "Pasteur_2"), than = c("Grant-White_1", "Grant-White_2")),
  list(path = "speed ~ visual", p = "b2", larger = c("Grant-White_1", "Grant-White_2"), than = c("Pasteur_1", "Pasteur_2")),
  list(path = "textual ~ visual", p = "b1", larger = c("Pasteur_2"), than = c("Grant-White_1", "Grant-White_2", "Pasteur_1")))
run <- function(data, missing, estimator) {
  defs <- vapply(seq_along(contrasts), function(k)
    paste0("d", k, " := ", contrast(contrasts[[k]]$p, contrasts[[k]]$larger, contrasts[[k]]$than)), "")
  fit <- sem(paste(labelled, paste(defs, collapse = "\n"), sep = "\n"), data = data, group = "g",
             group.equal = "loadings", missing = missing, estimator = estimator)
  pe <- parameterEstimates(fit)
  lapply(seq_along(contrasts), function(k) {
    d <- pe[pe$op == ":=" & pe$lhs == paste0("d", k), ]
    w <- lavTestWald(fit, constraints = paste0(contrast(contrasts[[k]]$p, contrasts[[k]]$larger,
                                                        contrasts[[k]]$than), " == 0"))
    c(contrasts[[k]][c("path", "larger", "than")],
      list(est = d$est, se = d$se, z = d$z, pvalue_one_sided = pnorm(d$z, lower.tail = FALSE),
           ci_lower = d$ci.lower, ci_upper = d$ci.upper, wald_chisq = w$stat, wald_df = w$df))
  })
}
out$groups <- groups
out$contrast_ml <- run(hs, "listwise", "ML")
out$contrast_fiml <- run(hsm, "ml", "ML")
out$contrast_mlr <- run(hsm, "ml", "MLR")
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE), "tests/reference/hypotheses.json")
