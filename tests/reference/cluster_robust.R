# Reference values for cluster-robust MLR in the engine (tests/test_cluster_robust.py).
# Rscript cluster_robust.R (lavaan 0.6-14). lavaan turns meanstructure on with cluster =. Data: cluster_robust.csv, simulated by
# tests/reference/cluster_robust.make.py: 40 organisations of 3-19 respondents, ICC .2 on the factors.
suppressMessages(library(lavaan))
library(jsonlite)
d <- read.csv("cluster_robust.csv")
models <- list(
  cfa = "f1 =~ y1 + y2 + y3\n f2 =~ y4 + y5 + y6",
  sem = "f1 =~ y1 + y2 + y3\n f2 =~ y4 + y5 + y6\n f2 ~ f1 + x"
)
out <- list()
for (name in names(models)) {
  fit <- sem(models[[name]], data = d, estimator = "MLR", cluster = "org")
  pe <- parameterEstimates(fit)
  fm <- fitMeasures(fit, c("chisq", "df", "chisq.scaled", "chisq.scaling.factor", "baseline.chisq.scaled",
                           "baseline.chisq.scaling.factor", "cfi.robust", "rmsea.robust"))
  plain <- sem(models[[name]], data = d, estimator = "MLR", meanstructure = TRUE)
  out[[name]] <- list(
    parameters = pe[, c("lhs", "op", "rhs", "est", "se")],
    se_unclustered = parameterEstimates(plain)$se,
    fit = as.list(fm)
  )
}
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE), "cluster_robust.json")
