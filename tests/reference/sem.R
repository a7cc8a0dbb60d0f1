# Reference values for tests/test_sem.py: Bollen's Political Democracy model, lavaan's SEM
# example, with residual covariances, equal-loading labels and a labelled indirect effect.
# Run: Rscript tests/reference/sem.R   (from the repository root; lavaan 0.6-14)
suppressPackageStartupMessages({library(lavaan); library(jsonlite)})
data(PoliticalDemocracy)
write.csv(PoliticalDemocracy, "tests/reference/political_democracy.csv", row.names = FALSE)

model <- '
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
table <- function(fit) {
  pe <- parameterEstimates(fit, standardized = TRUE)
  ss <- standardizedSolution(fit)
  pe$std.all.se <- ss$se
  pe[, c("lhs", "op", "rhs", "label", "est", "se", "z", "pvalue", "ci.lower", "ci.upper", "std.all", "std.all.se")]
}
fm_names <- c("npar", "chisq", "df", "pvalue", "baseline.chisq", "baseline.df", "cfi", "tli", "rmsea",
              "rmsea.ci.lower", "rmsea.ci.upper", "rmsea.pvalue", "srmr", "logl", "unrestricted.logl",
              "aic", "bic", "ntotal")
fit <- sem(model, data = PoliticalDemocracy)
fit_mlr <- sem(model, data = PoliticalDemocracy, estimator = "MLR")
mlr_names <- c(fm_names, "chisq.scaled", "chisq.scaling.factor", "cfi.scaled", "cfi.robust", "rmsea.robust")

# Bootstrap: 2000 draws of rows; percentile and bias-corrected (lavaan's "bca.simple") intervals.
set.seed(20261122)
t0 <- Sys.time()
boot <- sem(model, data = PoliticalDemocracy, se = "bootstrap", bootstrap = 2000)
boot_seconds <- as.numeric(Sys.time() - t0, units = "secs")
perc <- parameterEstimates(boot, boot.ci.type = "perc")
bc <- parameterEstimates(boot, boot.ci.type = "bca.simple")
bootstrap <- data.frame(lhs = perc$lhs, op = perc$op, rhs = perc$rhs, est = perc$est, se = perc$se,
                        perc.lower = perc$ci.lower, perc.upper = perc$ci.upper,
                        bc.lower = bc$ci.lower, bc.upper = bc$ci.upper)

# Competing model: no direct path (full mediation), and its chi-square difference test.
model_full <- sub("dem65 ~ c1*ind60 + b1*dem60", "dem65 ~ b1*dem60", model, fixed = TRUE)
model_full <- sub("total := c1 + a1*b1\n  ratio := a1*b1 / (c1 + a1*b1)", "", model_full, fixed = TRUE)
fit_full <- sem(model_full, data = PoliticalDemocracy)
lrt <- lavTestLRT(fit_full, fit)
fit_full_mlr <- sem(model_full, data = PoliticalDemocracy, estimator = "MLR")
lrt_mlr <- lavTestLRT(fit_full_mlr, fit_mlr)  # Satorra-Bentler (2001) scaled difference

out <- list(
  lavaan = as.character(packageVersion("lavaan")),
  model = model, model_full = model_full,
  ml = list(parameters = table(fit), fit = as.list(fitMeasures(fit, fm_names)),
            r2 = as.list(inspect(fit, "r2"))),
  mlr = list(parameters = table(fit_mlr), fit = as.list(fitMeasures(fit_mlr, mlr_names))),
  bootstrap = list(draws = 2000, seconds = boot_seconds, failed = 2000 - nrow(lavInspect(boot, "boot")),
                   table = bootstrap),
  competing = list(fit = as.list(fitMeasures(fit_full, fm_names)),
                   lrt = list(chisq_diff = lrt[2, "Chisq diff"], df_diff = lrt[2, "Df diff"], pvalue = lrt[2, "Pr(>Chisq)"]),
                   lrt_mlr = list(chisq_diff = lrt_mlr[2, "Chisq diff"], df_diff = lrt_mlr[2, "Df diff"],
                                  pvalue = lrt_mlr[2, "Pr(>Chisq)"]))
)
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, na = "null", pretty = TRUE), "tests/reference/sem.json")
