# Reference values for gapscale's multi-group CFA and invariance ladder, from lavaan 0.6 and
# semTools on Holzinger & Swineford (1939) by school.
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

writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, na = "null"), "tests/reference/invariance.json")
