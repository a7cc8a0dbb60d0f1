# Reference for tests/test_console.py: what lavaan's summary prints, to check gapscale's console
# report (pipeline/console.py) against it. For three fits, the text of
# summary(fit, fit.measures = TRUE, standardized = TRUE, rsquare = TRUE), the fitMeasures and the
# parameterEstimates (standardized) that the text shows; the test formats the latter two with
# gapscale's console functions and compares every printed number and label with lavaan's text.
# Run from the repository root: Rscript tests/reference/console.R (lavaan 0.6-14);
# writes tests/reference/console.json.
suppressPackageStartupMessages({library(lavaan); library(jsonlite)})

entry <- function(fit) {
  pe <- parameterEstimates(fit, standardized = TRUE, rsquare = TRUE)
  if (is.null(pe$label)) pe$label <- ""
  fm <- fitMeasures(fit)
  fm <- as.list(setNames(unname(fm), gsub(".", "_", names(fm), fixed = TRUE)))
  test <- lavInspect(fit, "test")
  if (!is.null(test$scaled.shifted)) fm$chisq_shift_parameters <- test$scaled.shifted$shift.parameter
  list(summary = capture.output(summary(fit, fit.measures = TRUE, standardized = TRUE, rsquare = TRUE)),
       fit = fm,
       pe = pe[, c("lhs", "op", "rhs", "label", "est", "se", "z", "pvalue", "std.all")])
}

hs <- read.csv("tests/reference/holzinger_swineford.csv")
pd <- read.csv("tests/reference/political_democracy.csv")
bfi <- read.csv("tests/reference/bfi_600.csv")

ml <- cfa("visual =~ x1 + x2 + x3\ntextual =~ x4 + x5 + x6\nspeed =~ x7 + x8 + x9", data = hs)
mlr <- sem("ind60 =~ x1 + x2 + x3
  dem60 =~ y1 + a*y2 + b*y3 + c*y4
  dem65 =~ y5 + a*y6 + b*y7 + c*y8
  dem60 ~ a1*ind60
  dem65 ~ c1*ind60 + b1*dem60
  y1 ~~ y5
  indirect := a1*b1", data = pd, estimator = "MLR")
wlsmv <- cfa("agree =~ A1 + A2 + A3 + A4 + A5\nconsc =~ C1 + C2 + C3 + C4 + C5\nextra =~ E1 + E2 + E3 + E4 + E5",
             data = bfi, ordered = TRUE, estimator = "WLSMV")

out <- list(lavaan_version = as.character(packageVersion("lavaan")),
            ml = entry(ml), mlr = entry(mlr), wlsmv = entry(wlsmv))
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, na = "null", pretty = FALSE), "tests/reference/console.json")
