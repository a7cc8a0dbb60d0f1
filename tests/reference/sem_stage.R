# Reference values for tests/test_sem.py's stage tests beyond tests/reference/sem.R: lavaan's R²
# (lavInspect(fit, "r2")) of a MIMIC model (engine.R's case "mimic", Holzinger & Swineford) and
# of the WLSMV SEM with ind := a*b (engine_wls.R's "sem_wlsmv", psych::bfi), std.lv = TRUE
# estimates of the MIMIC model, and MLM fits of Political Democracy's hypothesised and
# full-mediation models with their Satorra-Bentler (2001) scaled difference.
# Run from the repository root: Rscript tests/reference/sem_stage.R (lavaan 0.6-14)
# Writes tests/reference/sem_stage.json.
suppressPackageStartupMessages({library(lavaan); library(jsonlite)})
stopifnot(packageVersion("lavaan") == "0.6.14")
hs <- read.csv("tests/reference/hs_engine.csv")
bfi <- read.csv("tests/reference/bfi_1000.csv")
pd <- read.csv("tests/reference/political_democracy.csv")
ref <- fromJSON("tests/reference/sem.json")

MIMIC <- '
  visual  =~ x1 + x2 + x3
  textual =~ x4 + x5 + x6
  speed   =~ x7 + x8 + x9
  visual ~ sex + ageyr
  textual ~ sex + ageyr
  speed ~ ageyr
  x1 ~ ageyr
'
items <- c(paste0("A", 1:5), paste0("C", 1:5), paste0("E", 1:5))
WLS <- "agree =~ A1 + A2 + A3 + A4 + A5
consc =~ C1 + C2 + C3 + C4 + C5
extra =~ E1 + E2 + E3 + E4 + E5
consc ~ a*agree
extra ~ b*consc
ind := a*b"
r2 <- function(fit) as.list(lavInspect(fit, "r2"))
pe <- function(fit) {
  p <- parameterEstimates(fit, standardized = TRUE)
  if (is.null(p$label)) p$label <- ""
  p[, c("lhs", "op", "rhs", "label", "est", "se", "std.all")]
}
mimic <- sem(MIMIC, data = hs)
mimic_stdlv <- sem(MIMIC, data = hs, std.lv = TRUE)
wls <- sem(WLS, data = bfi[, items], ordered = items, estimator = "WLSMV")
mlm <- sem(ref$model, data = pd, estimator = "MLM")
mlm_full <- sem(ref$model_full, data = pd, estimator = "MLM")
lrt <- lavTestLRT(mlm_full, mlm, method = "satorra.bentler.2001")
out <- list(
  lavaan = as.character(packageVersion("lavaan")),
  mimic = list(model = MIMIC, r2 = r2(mimic), fit = as.list(fitMeasures(mimic, c("chisq", "df", "aic", "bic")))),
  mimic_stdlv = list(parameters = pe(mimic_stdlv)),
  wlsmv = list(model = WLS, ordered = items, r2 = r2(wls)),
  mlm = list(parameters = pe(mlm), fit = as.list(fitMeasures(mlm, c("chisq", "chisq.scaled", "chisq.scaling.factor", "df"))),
             full_fit = as.list(fitMeasures(mlm_full, c("chisq", "chisq.scaled", "chisq.scaling.factor", "df"))),
             lrt = list(chisq_diff = lrt[2, "Chisq diff"], df_diff = lrt[2, "Df diff"], pvalue = lrt[2, "Pr(>Chisq)"]))
)
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE), "tests/reference/sem_stage.json")
