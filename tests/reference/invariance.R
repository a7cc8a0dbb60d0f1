# Reference values for gapscale's multi-group CFA and invariance ladder, from lavaan 0.6-14 and
# semTools 0.5-6 on Holzinger & Swineford (1939) by school (ML, FIML, MLR and MLM ladders, the
# structural comparison by ML and MLR) and on psych::bfi items by gender (the ordinal WLSMV ladder
# of measEq.syntax, ID.cat = "Wu.Estabrook.2016"; reads tests/reference/bfi_1000.csv).
# Run from the repository root: Rscript tests/reference/invariance.R
# Reads tests/reference/hs_full.csv and hs_missing.csv (written by cfa.R); writes
# tests/reference/hs_sex.csv (id, sex: the second grouping of the four-group case) and
# tests/reference/invariance.json.
suppressPackageStartupMessages({library(lavaan); library(semTools); library(jsonlite)})
hs <- read.csv("tests/reference/hs_full.csv")
sex <- lavaan::HolzingerSwineford1939[, c("id", "sex")]
stopifnot(all(sex$id == hs$id))
write.csv(sex, "tests/reference/hs_sex.csv", row.names = FALSE)

model <- "visual =~ x1 + x2 + x3
          textual =~ x4 + x5 + x6
          speed =~ x7 + x8 + x9"
measures <- c("npar", "chisq", "df", "pvalue", "baseline.chisq", "baseline.df", "cfi", "tli", "rmsea",
              "rmsea.ci.lower", "rmsea.ci.upper", "rmsea.pvalue", "srmr", "logl", "unrestricted.logl",
              "aic", "bic", "ntotal")
pe_cols <- c("lhs", "op", "rhs", "group", "est", "se", "z", "pvalue", "ci.lower", "ci.upper", "std.all")
summarise <- function(fit) {
  pe <- parameterEstimates(fit, standardized = TRUE)
  pe <- pe[pe$op != "==", pe_cols]
  pe$group <- lavInspect(fit, "group.label")[pe$group]
  list(fit = as.list(fitMeasures(fit, measures)), pe = pe, converged = lavInspect(fit, "converged"))
}
lrt <- function(...) {
  t <- as.data.frame(lavTestLRT(...))
  list(df = t$Df, chisq = t$Chisq, delta_chisq = t$`Chisq diff`, delta_df = t$`Df diff`,
       delta_pvalue = t$`Pr(>Chisq)`)
}

out <- list(lavaan_version = as.character(packageVersion("lavaan")),
            semtools_version = as.character(packageVersion("semTools")), model = model)

# --- The ladder by school (Pasteur first: lavaan orders groups as they appear in the data).
configural <- cfa(model, data = hs, group = "school")
metric <- cfa(model, data = hs, group = "school", group.equal = "loadings")
scalar <- cfa(model, data = hs, group = "school", group.equal = c("loadings", "intercepts"))
strict <- cfa(model, data = hs, group = "school", group.equal = c("loadings", "intercepts", "residuals"))
opts <- lavInspect(configural, "options")
out$options <- list(information = opts$information[1], h1_information = opts$h1.information[1], se = opts$se)
out$group_label <- lavInspect(configural, "group.label")
out$configural <- summarise(configural)
out$metric <- summarise(metric)
out$scalar <- summarise(scalar)
out$strict <- summarise(strict)
out$lrt <- lrt(configural, metric, scalar, strict)
cf <- compareFit(configural, metric, scalar, strict, argsLRT = list(method = "default"))
out$compare_fit <- list(nested = as.data.frame(cf@nested)[, c("Df", "Chisq", "Chisq diff", "Df diff", "Pr(>Chisq)")],
                        fit = as.data.frame(cf@fit)[, c("chisq", "df", "cfi", "rmsea", "srmr")])

# --- Partial scalar invariance: the intercepts of x3 and x7 free across schools.
partial <- cfa(model, data = hs, group = "school", group.equal = c("loadings", "intercepts"),
               group.partial = c("x3 ~ 1", "x7 ~ 1"))
out$partial_scalar <- summarise(partial)
out$partial_lrt <- lrt(metric, partial)

# --- Four groups: school x sex.
hs4 <- hs
hs4$school_sex <- paste(hs$school, sex$sex, sep = "_")
out$four_groups <- list(
  group_label = lavInspect(cfa(model, data = hs4, group = "school_sex"), "group.label"),
  configural = as.list(fitMeasures(cfa(model, data = hs4, group = "school_sex"), measures)),
  metric = as.list(fitMeasures(cfa(model, data = hs4, group = "school_sex", group.equal = "loadings"), measures)),
  scalar = summarise(cfa(model, data = hs4, group = "school_sex", group.equal = c("loadings", "intercepts"))))

# --- A second-order model with equal intercepts: lavaan frees every latent mean in group 2,
# the first-order ones included (not identified; lavaan warns about vcov).
second <- "visual =~ x1 + x2 + x3
           textual =~ x4 + x5 + x6
           speed =~ x7 + x8 + x9
           g =~ visual + textual + speed"
fit2 <- suppressWarnings(cfa(second, data = hs, group = "school", group.equal = c("loadings", "intercepts")))
out$second_order_scalar <- list(fit = as.list(fitMeasures(fit2, c("npar", "chisq", "df", "cfi", "rmsea"))))

# --- Structural model: regressions free vs equal across schools, loadings equal in both.
structural <- paste(model, "textual ~ visual", "speed ~ visual + textual", sep = "\n")
free <- sem(structural, data = hs, group = "school", group.equal = "loadings")
equal <- sem(structural, data = hs, group = "school", group.equal = c("loadings", "regressions"))
out$structural_free <- summarise(free)
out$structural_equal <- summarise(equal)
out$structural_lrt <- lrt(free, equal)
labelled <- paste(model, "textual ~ c(b1.1, b1.2)*visual",
                  "speed ~ c(b2.1, b2.2)*visual + c(b3.1, b3.2)*textual", sep = "\n")
wfit <- sem(labelled, data = hs, group = "school", group.equal = "loadings")
stopifnot(abs(fitMeasures(wfit, "chisq") - fitMeasures(free, "chisq")) < 1e-8)
wald <- function(constraint) {
  w <- lavTestWald(wfit, constraints = constraint)
  list(chisq = w$stat, df = w$df, pvalue = w$p.value)
}
out$structural_wald <- list(`textual~visual` = wald("b1.1 == b1.2"), `speed~visual` = wald("b2.1 == b2.2"),
                            `speed~textual` = wald("b3.1 == b3.2"))

# --- FIML: hs_missing.csv (10% of the cells missing) with the school of each respondent.
hsm <- merge(read.csv("tests/reference/hs_missing.csv"), hs[, c("id", "school")], by = "id", sort = FALSE)
hsm <- hsm[order(match(hsm$id, hs$id)), ]
fconf <- cfa(model, data = hsm, group = "school", missing = "fiml")
fscal <- cfa(model, data = hsm, group = "school", missing = "fiml", group.equal = c("loadings", "intercepts"))
opts <- lavInspect(fconf, "options")
out$fiml <- list(information = opts$information[1], group_label = lavInspect(fconf, "group.label"),
                 configural = summarise(fconf), scalar = summarise(fscal), lrt = lrt(fconf, fscal))

# --- Robust ladders by school (continuous items): MLR and MLM, Satorra-Bentler (2001) scaled
# differences (lavTestLRT's default for both), compareFit's robust indices.
robust_measures <- c(measures, "chisq.scaled", "df.scaled", "pvalue.scaled", "chisq.scaling.factor",
                     "cfi.scaled", "tli.scaled", "rmsea.scaled", "cfi.robust", "tli.robust", "rmsea.robust")
robust_summary <- function(fit) {
  s <- summarise(fit)
  s$fit <- as.list(fitMeasures(fit, robust_measures))
  s
}
robust_ladder <- function(estimator) {
  fits <- list(configural = cfa(model, data = hs, group = "school", estimator = estimator),
               metric = cfa(model, data = hs, group = "school", estimator = estimator, group.equal = "loadings"),
               scalar = cfa(model, data = hs, group = "school", estimator = estimator,
                            group.equal = c("loadings", "intercepts")),
               strict = cfa(model, data = hs, group = "school", estimator = estimator,
                            group.equal = c("loadings", "intercepts", "residuals")))
  res <- lapply(fits, robust_summary)
  res$lrt <- lrt(fits$configural, fits$metric, fits$scalar, fits$strict, method = "satorra.bentler.2001")
  cf <- compareFit(fits$configural, fits$metric, fits$scalar, fits$strict)
  res$compare_fit <- as.data.frame(cf@fit)[, c("chisq.scaled", "cfi.robust", "rmsea.robust", "srmr")]
  res$partial_scalar <- robust_summary(cfa(model, data = hs, group = "school", estimator = estimator,
                                           group.equal = c("loadings", "intercepts"),
                                           group.partial = c("x3 ~ 1", "x7 ~ 1")))
  res$partial_lrt <- lrt(fits$metric, cfa(model, data = hs, group = "school", estimator = estimator,
                                          group.equal = c("loadings", "intercepts"),
                                          group.partial = c("x3 ~ 1", "x7 ~ 1")), method = "satorra.bentler.2001")
  res
}
out$mlr <- robust_ladder("MLR")
out$mlm <- robust_ladder("MLM")
# Structural comparison by MLR: SB2001 difference free vs equal, robust Wald tests per path.
rfree <- sem(structural, data = hs, group = "school", group.equal = "loadings", estimator = "MLR")
requal <- sem(structural, data = hs, group = "school", group.equal = c("loadings", "regressions"), estimator = "MLR")
rwfit <- sem(labelled, data = hs, group = "school", group.equal = "loadings", estimator = "MLR")
rwald <- function(constraint) {
  w <- lavTestWald(rwfit, constraints = constraint)
  list(chisq = w$stat, df = w$df, pvalue = w$p.value)
}
out$mlr_structural <- list(free = robust_summary(rfree), equal = robust_summary(requal),
                           lrt = lrt(rfree, requal, method = "satorra.bentler.2001"),
                           wald = list(`textual~visual` = rwald("b1.1 == b1.2"), `speed~visual` = rwald("b2.1 == b2.2"),
                                       `speed~textual` = rwald("b3.1 == b3.2")))

# --- The ordinal ladder (WLSMV, delta parameterization) on psych::bfi items A1-A5, C1-C5,
# E1-E5 by gender (tests/reference/bfi_1000.csv), as semTools' measEq.syntax builds it with
# ID.fac = "std.lv", ID.cat = "Wu.Estabrook.2016"; lavTestLRT's scaled-and-shifted differences;
# compareFit's indices (scaled: lavaan's robust ones are NA with equal thresholds); a partial
# scalar model with the intercept of E1 free, and equal thresholds but A1's second.
bfi <- read.csv("tests/reference/bfi_1000.csv")
items <- c(paste0("A", 1:5), paste0("C", 1:5), paste0("E", 1:5))
bfi_model <- "agree =~ A1 + A2 + A3 + A4 + A5
consc =~ C1 + C2 + C3 + C4 + C5
extra =~ E1 + E2 + E3 + E4 + E5"
ord_measures <- c("npar", "chisq", "df", "pvalue", "chisq.scaled", "df.scaled", "pvalue.scaled",
                  "chisq.scaling.factor", "cfi", "tli", "rmsea", "cfi.scaled", "tli.scaled", "rmsea.scaled",
                  "cfi.robust", "rmsea.robust", "srmr", "ntotal")
ordinal_fit <- function(equal, partial = "") {
  measEq.syntax(configural.model = bfi_model, data = bfi[, c(items, "gender")], ordered = items,
                parameterization = "delta", ID.fac = "std.lv", ID.cat = "Wu.Estabrook.2016", group = "gender",
                group.equal = equal, group.partial = partial, estimator = "WLSMV", return.fit = TRUE)
}
ord_summary <- function(fit) {
  pe <- parameterEstimates(fit, standardized = TRUE)
  pe <- pe[!(pe$op %in% c("==", ":=")), pe_cols]
  pe$group <- lavInspect(fit, "group.label")[pe$group]
  fm <- fitMeasures(fit)
  list(fit = setNames(lapply(ord_measures, function(m) if (m %in% names(fm)) unname(fm[[m]]) else NA), ord_measures),
       pe = pe, converged = lavInspect(fit, "converged"))
}
ofits <- list(configural = ordinal_fit(""), thresholds = ordinal_fit("thresholds"),
              metric = ordinal_fit(c("thresholds", "loadings")),
              scalar = ordinal_fit(c("thresholds", "loadings", "intercepts")))
out$ordinal <- lapply(ofits, ord_summary)
out$ordinal$group_label <- lavInspect(ofits$configural, "group.label")
out$ordinal$lrt <- lapply(2:4, function(k) {
  t <- lavTestLRT(ofits[[k - 1]], ofits[[k]])
  list(delta_chisq = t[2, "Chisq diff"], delta_df = t[2, "Df diff"], delta_pvalue = t[2, "Pr(>Chisq)"])
})
ocf <- compareFit(ofits$configural, ofits$thresholds, ofits$metric, ofits$scalar)
out$ordinal$compare_fit <- as.data.frame(ocf@fit)[, c("chisq.scaled", "cfi.scaled", "rmsea.scaled", "srmr")]
opartial <- ordinal_fit(c("thresholds", "loadings", "intercepts"), partial = "E1 ~ 1")
out$ordinal$partial_scalar <- ord_summary(opartial)
out$ordinal$partial_thresholds <- ord_summary(ordinal_fit("thresholds", partial = "A1|t2"))
t <- lavTestLRT(ofits$metric, opartial)
out$ordinal$partial_lrt <- list(delta_chisq = t[2, "Chisq diff"], delta_df = t[2, "Df diff"],
                                delta_pvalue = t[2, "Pr(>Chisq)"])

# --- MLR with FIML (lavaan's missing = "ml", robust.huber.white SEs, Yuan-Bentler scaled test):
# configural and scalar on hs_missing.csv by school, their SB2001 difference.
rconf <- cfa(model, data = hsm, group = "school", missing = "fiml", estimator = "MLR")
rscal <- cfa(model, data = hsm, group = "school", missing = "fiml", estimator = "MLR",
             group.equal = c("loadings", "intercepts"))
out$mlr_fiml <- list(group_label = lavInspect(rconf, "group.label"), configural = robust_summary(rconf),
                     scalar = robust_summary(rscal), lrt = lrt(rconf, rscal, method = "satorra.bentler.2001"))

writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, na = "null"), "tests/reference/invariance.json")
