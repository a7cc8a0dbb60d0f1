"""The references a report can cite, and the registry that keeps its reference list honest.

Each finding that states a result of a method cites that method through
:meth:`Citations.cite`, which records the key and returns the in-text citation (APA 7,
parenthetical: ``Hu & Bentler, 1999``; three or more authors ``Henseler et al., 2015``). The
reference list is built from the keys recorded, so it holds every method the numbers came from
and no other (tests/test_report.py compares the citations in the text with the list).

Entries are APA 7 references in Markdown (``*italic*`` for journal and volume, or book title).
"""
from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["REFERENCES", "Citations", "in_text"]

# key -> (authors as cited in text, year, reference-list entry)
REFERENCES: dict[str, tuple[str, str, str]] = {
    "anderson1988": ("Anderson & Gerbing", "1988", "Anderson, J. C., & Gerbing, D. W. (1988). Structural equation "
                     "modeling in practice: A review and recommended two-step approach. *Psychological Bulletin, "
                     "103*(3), 411–423. https://doi.org/10.1037/0033-2909.103.3.411"),
    "anderson1991": ("Anderson & Gerbing", "1991", "Anderson, J. C., & Gerbing, D. W. (1991). Predicting the "
                     "performance of measures in a confirmatory factor analysis with a pretest assessment of their "
                     "substantive validities. *Journal of Applied Psychology, 76*(5), 732–740. "
                     "https://doi.org/10.1037/0021-9010.76.5.732"),
    "ayre2014": ("Ayre & Scally", "2014", "Ayre, C., & Scally, A. J. (2014). Critical values for Lawshe's content "
                 "validity ratio: Revisiting the original methods of calculation. *Measurement and Evaluation in "
                 "Counseling and Development, 47*(1), 79–86. https://doi.org/10.1177/0748175613513808"),
    "howard2016": ("Howard & Melloy", "2016", "Howard, M. C., & Melloy, R. C. (2016). Evaluating item-sort task "
                   "methods: The presentation of a new statistical significance formula and methodological best "
                   "practices. *Journal of Business and Psychology, 31*(1), 173–186. "
                   "https://doi.org/10.1007/s10869-015-9404-y"),
    "lawshe1975": ("Lawshe", "1975", "Lawshe, C. H. (1975). A quantitative approach to content validity. *Personnel "
                   "Psychology, 28*(4), 563–575. https://doi.org/10.1111/j.1744-6570.1975.tb01393.x"),
    "polit2007": ("Polit et al.", "2007", "Polit, D. F., Beck, C. T., & Owen, S. V. (2007). Is the CVI an acceptable "
                  "indicator of content validity? Appraisal and recommendations. *Research in Nursing & Health, "
                  "30*(4), 459–467. https://doi.org/10.1002/nur.20199"),
    "maccallum1996": ("MacCallum et al.", "1996", "MacCallum, R. C., Browne, M. W., & Sugawara, H. M. (1996). Power "
                      "analysis and determination of sample size for covariance structure modeling. *Psychological "
                      "Methods, 1*(2), 130–149. https://doi.org/10.1037/1082-989X.1.2.130"),
    "muthen2002": ("Muthén & Muthén", "2002", "Muthén, L. K., & Muthén, B. O. (2002). How to use a Monte Carlo study "
                   "to decide on sample size and determine power. *Structural Equation Modeling, 9*(4), 599–620. "
                   "https://doi.org/10.1207/S15328007SEM0904_8"),
    "satorra1985": ("Satorra & Saris", "1985", "Satorra, A., & Saris, W. E. (1985). Power of the likelihood ratio "
                    "test in covariance structure analysis. *Psychometrika, 50*(1), 83–90. "
                    "https://doi.org/10.1007/BF02294150"),
    "arbuckle1996": ("Arbuckle", "1996", "Arbuckle, J. L. (1996). Full information estimation in the presence of "
                     "incomplete data. In G. A. Marcoulides & R. E. Schumacker (Eds.), *Advanced structural equation "
                     "modeling: Issues and techniques* (pp. 243–277). Lawrence Erlbaum."),
    "bartlett1950": ("Bartlett", "1950", "Bartlett, M. S. (1950). Tests of significance in factor analysis. *British "
                     "Journal of Statistical Psychology, 3*(2), 77–85. "
                     "https://doi.org/10.1111/j.2044-8317.1950.tb00285.x"),
    "bliese2000": ("Bliese", "2000", "Bliese, P. D. (2000). Within-group agreement, non-independence, and "
                   "reliability: Implications for data aggregation and analysis. In K. J. Klein & S. W. J. Kozlowski "
                   "(Eds.), *Multilevel theory, research, and methods in organizations* (pp. 349–381). Jossey-Bass."),
    "brosseau2012": ("Brosseau-Liard et al.", "2012", "Brosseau-Liard, P. E., Savalei, V., & Li, L. (2012). An "
                     "investigation of the sample performance of two nonnormality corrections for RMSEA. "
                     "*Multivariate Behavioral Research, 47*(6), 904–930. "
                     "https://doi.org/10.1080/00273171.2012.715252"),
    "brosseau2014": ("Brosseau-Liard & Savalei", "2014", "Brosseau-Liard, P. E., & Savalei, V. (2014). Adjusting "
                     "incremental fit indices for nonnormality. *Multivariate Behavioral Research, 49*(5), 460–470. "
                     "https://doi.org/10.1080/00273171.2014.933697"),
    "chen2007": ("Chen", "2007", "Chen, F. F. (2007). Sensitivity of goodness of fit indexes to lack of measurement "
                 "invariance. *Structural Equation Modeling, 14*(3), 464–504. "
                 "https://doi.org/10.1080/10705510701301834"),
    "cronbach1951": ("Cronbach", "1951", "Cronbach, L. J. (1951). Coefficient alpha and the internal structure of "
                     "tests. *Psychometrika, 16*(3), 297–334. https://doi.org/10.1007/BF02310555"),
    "curran1996": ("Curran et al.", "1996", "Curran, P. J., West, S. G., & Finch, J. F. (1996). The robustness of test "
                   "statistics to nonnormality and specification error in confirmatory factor analysis. "
                   "*Psychological Methods, 1*(1), 16–29. https://doi.org/10.1037/1082-989X.1.1.16"),
    "dunn2018": ("Dunn et al.", "2018", "Dunn, A. M., Heggestad, E. D., Shanock, L. R., & Theilgard, N. (2018). "
                 "Intra-individual response variability as an indicator of insufficient effort responding: Comparison "
                 "to other indicators and relationships with individual differences. *Journal of Business and "
                 "Psychology, 33*(1), 105–121. https://doi.org/10.1007/s10869-016-9479-0"),
    "efron1993": ("Efron & Tibshirani", "1993", "Efron, B., & Tibshirani, R. J. (1993). *An introduction to the "
                  "bootstrap*. Chapman & Hall."),
    "feldt1987": ("Feldt et al.", "1987", "Feldt, L. S., Woodruff, D. J., & Salih, F. A. (1987). Statistical inference "
                  "for coefficient alpha. *Applied Psychological Measurement, 11*(1), 93–103. "
                  "https://doi.org/10.1177/014662168701100107"),
    "flora2004": ("Flora & Curran", "2004", "Flora, D. B., & Curran, P. J. (2004). An empirical evaluation of "
                  "alternative methods of estimation for confirmatory factor analysis with ordinal data. "
                  "*Psychological Methods, 9*(4), 466–491. https://doi.org/10.1037/1082-989X.9.4.466"),
    "fornell1981": ("Fornell & Larcker", "1981", "Fornell, C., & Larcker, D. F. (1981). Evaluating structural "
                    "equation models with unobservable variables and measurement error. *Journal of Marketing "
                    "Research, 18*(1), 39–50. https://doi.org/10.1177/002224378101800104"),
    "harman1966": ("Harman & Jones", "1966", "Harman, H. H., & Jones, W. H. (1966). Factor analysis by minimizing "
                   "residuals (minres). *Psychometrika, 31*(3), 351–368. https://doi.org/10.1007/BF02289468"),
    "harris2020": ("Harris et al.", "2020", "Harris, C. R., Millman, K. J., van der Walt, S. J., Gommers, R., "
                   "Virtanen, P., Cournapeau, D., Wieser, E., Taylor, J., Berg, S., Smith, N. J., Kern, R., Picus, "
                   "M., Hoyer, S., van Kerkwijk, M. H., Brett, M., Haldane, A., del Río, J. F., Wiebe, M., Peterson, "
                   "P., ... Oliphant, T. E. (2020). Array programming with NumPy. *Nature, 585*(7825), 357–362. "
                   "https://doi.org/10.1038/s41586-020-2649-2"),
    "hendrickson1964": ("Hendrickson & White", "1964", "Hendrickson, A. E., & White, P. O. (1964). Promax: A quick "
                        "method for rotation to oblique simple structure. *British Journal of Statistical Psychology, "
                        "17*(1), 65–70. https://doi.org/10.1111/j.2044-8317.1964.tb00244.x"),
    "henseler2015": ("Henseler et al.", "2015", "Henseler, J., Ringle, C. M., & Sarstedt, M. (2015). A new criterion "
                     "for assessing discriminant validity in variance-based structural equation modeling. *Journal "
                     "of the Academy of Marketing Science, 43*(1), 115–135. https://doi.org/10.1007/s11747-014-0403-8"),
    "holm1979": ("Holm", "1979", "Holm, S. (1979). A simple sequentially rejective multiple test procedure. "
                 "*Scandinavian Journal of Statistics, 6*(2), 65–70."),
    "horn1965": ("Horn", "1965", "Horn, J. L. (1965). A rationale and test for the number of factors in factor "
                 "analysis. *Psychometrika, 30*(2), 179–185. https://doi.org/10.1007/BF02289447"),
    "hu1999": ("Hu & Bentler", "1999", "Hu, L., & Bentler, P. M. (1999). Cutoff criteria for fit indexes in "
               "covariance structure analysis: Conventional criteria versus new alternatives. *Structural Equation "
               "Modeling, 6*(1), 1–55. https://doi.org/10.1080/10705519909540118"),
    "jennrich1966": ("Jennrich & Sampson", "1966", "Jennrich, R. I., & Sampson, P. F. (1966). Rotation for simple "
                     "loadings. *Psychometrika, 31*(3), 313–323. https://doi.org/10.1007/BF02289465"),
    "kaiser1958": ("Kaiser", "1958", "Kaiser, H. F. (1958). The varimax criterion for analytic rotation in factor "
                   "analysis. *Psychometrika, 23*(3), 187–200. https://doi.org/10.1007/BF02289233"),
    "kaiser1960": ("Kaiser", "1960", "Kaiser, H. F. (1960). The application of electronic computers to factor "
                   "analysis. *Educational and Psychological Measurement, 20*(1), 141–151. "
                   "https://doi.org/10.1177/001316446002000116"),
    "kaiser1974": ("Kaiser", "1974", "Kaiser, H. F. (1974). An index of factorial simplicity. *Psychometrika, 39*(1), "
                   "31–36. https://doi.org/10.1007/BF02291575"),
    "kish1965": ("Kish", "1965", "Kish, L. (1965). *Survey sampling*. Wiley."),
    "little1988": ("Little", "1988", "Little, R. J. A. (1988). A test of missing completely at random for "
                   "multivariate data with missing values. *Journal of the American Statistical Association, "
                   "83*(404), 1198–1202. https://doi.org/10.1080/01621459.1988.10478722"),
    "mardia1970": ("Mardia", "1970", "Mardia, K. V. (1970). Measures of multivariate skewness and kurtosis with "
                   "applications. *Biometrika, 57*(3), 519–530. https://doi.org/10.1093/biomet/57.3.519"),
    "mcdonald1999": ("McDonald", "1999", "McDonald, R. P. (1999). *Test theory: A unified treatment*. Lawrence "
                     "Erlbaum."),
    "mckinney2010": ("McKinney", "2010", "McKinney, W. (2010). Data structures for statistical computing in Python. "
                     "In S. van der Walt & J. Millman (Eds.), *Proceedings of the 9th Python in Science Conference* "
                     "(pp. 56–61). https://doi.org/10.25080/Majora-92bf1922-00a"),
    "meade2012": ("Meade & Craig", "2012", "Meade, A. W., & Craig, S. B. (2012). Identifying careless responses in "
                  "survey data. *Psychological Methods, 17*(3), 437–455. https://doi.org/10.1037/a0028085"),
    "muthen1995": ("Muthén & Satorra", "1995", "Muthén, B. O., & Satorra, A. (1995). Complex sample data in structural "
                   "equation modeling. *Sociological Methodology, 25*, 267–316. https://doi.org/10.2307/271070"),
    "nunnally1994": ("Nunnally & Bernstein", "1994", "Nunnally, J. C., & Bernstein, I. H. (1994). *Psychometric "
                     "theory* (3rd ed.). McGraw-Hill."),
    "olsson1979": ("Olsson", "1979", "Olsson, U. (1979). Maximum likelihood estimation of the polychoric correlation "
                   "coefficient. *Psychometrika, 44*(4), 443–460. https://doi.org/10.1007/BF02296207"),
    "lindell2001": ("Lindell & Whitney", "2001", "Lindell, M. K., & Whitney, D. J. (2001). Accounting for common method "
                    "variance in cross-sectional research designs. *Journal of Applied Psychology, 86*(1), 114–121. "
                    "https://doi.org/10.1037/0021-9010.86.1.114"),
    "williams2010": ("Williams et al.", "2010", "Williams, L. J., Hartman, N., & Cavazotte, F. (2010). Method variance "
                     "and marker variables: A review and comprehensive CFA marker technique. *Organizational Research "
                     "Methods, 13*(3), 477–514. https://doi.org/10.1177/1094428110366036"),
    "richardson2009": ("Richardson et al.", "2009", "Richardson, H. A., Simmering, M. J., & Sturman, M. C. (2009). A "
                       "tale of three perspectives: Examining post hoc statistical techniques for detection and "
                       "correction of common method variance. *Organizational Research Methods, 12*(4), 762–800. "
                       "https://doi.org/10.1177/1094428109332834"),
    "podsakoff2003": ("Podsakoff et al.", "2003", "Podsakoff, P. M., MacKenzie, S. B., Lee, J.-Y., & Podsakoff, N. P. "
                      "(2003). Common method biases in behavioral research: A critical review of the literature and "
                      "recommended remedies. *Journal of Applied Psychology, 88*(5), 879–903. "
                      "https://doi.org/10.1037/0021-9010.88.5.879"),
    "preacher2008": ("Preacher & Hayes", "2008", "Preacher, K. J., & Hayes, A. F. (2008). Asymptotic and resampling "
                     "strategies for assessing and comparing indirect effects in multiple mediator models. *Behavior "
                     "Research Methods, 40*(3), 879–891. https://doi.org/10.3758/BRM.40.3.879"),
    "roemer2021": ("Roemer et al.", "2021", "Roemer, E., Schuberth, F., & Henseler, J. (2021). HTMT2–an improved "
                   "criterion for assessing discriminant validity in structural equation modeling. *Industrial "
                   "Management & Data Systems, 121*(12), 2637–2650. https://doi.org/10.1108/IMDS-02-2021-0082"),
    "ronkko2022": ("Rönkkö & Cho", "2022", "Rönkkö, M., & Cho, E. (2022). An updated guideline for assessing "
                   "discriminant validity. *Organizational Research Methods, 25*(1), 6–47. "
                   "https://doi.org/10.1177/1094428120968614"),
    "satorra1994": ("Satorra & Bentler", "1994", "Satorra, A., & Bentler, P. M. (1994). Corrections to test "
                    "statistics and standard errors in covariance structure analysis. In A. von Eye & C. C. Clogg "
                    "(Eds.), *Latent variables analysis: Applications for developmental research* (pp. 399–419). "
                    "Sage."),
    "satorra2001": ("Satorra & Bentler", "2001", "Satorra, A., & Bentler, P. M. (2001). A scaled difference "
                    "chi-square test statistic for moment structure analysis. *Psychometrika, 66*(4), 507–514. "
                    "https://doi.org/10.1007/BF02296192"),
    "savalei2021": ("Savalei", "2021", "Savalei, V. (2021). Improving fit indices in structural equation modeling "
                    "with categorical data. *Multivariate Behavioral Research, 56*(3), 390–407. "
                    "https://doi.org/10.1080/00273171.2020.1717922"),
    "sorbom1989": ("Sörbom", "1989", "Sörbom, D. (1989). Model modification. *Psychometrika, 54*(3), 371–384. "
                   "https://doi.org/10.1007/BF02294623"),
    "vandenberg2000": ("Vandenberg & Lance", "2000", "Vandenberg, R. J., & Lance, C. E. (2000). A review and "
                       "synthesis of the measurement invariance literature: Suggestions, practices, and "
                       "recommendations for organizational research. *Organizational Research Methods, 3*(1), 4–70. "
                       "https://doi.org/10.1177/109442810031002"),
    "velicer1976": ("Velicer", "1976", "Velicer, W. F. (1976). Determining the number of components from the matrix "
                    "of partial correlations. *Psychometrika, 41*(3), 321–327. https://doi.org/10.1007/BF02293557"),
    "virtanen2020": ("Virtanen et al.", "2020", "Virtanen, P., Gommers, R., Oliphant, T. E., Haberland, M., Reddy, "
                     "T., Cournapeau, D., Burovski, E., Peterson, P., Weckesser, W., Bright, J., van der Walt, S. J., "
                     "Brett, M., Wilson, J., Millman, K. J., Mayorov, N., Nelson, A. R. J., Jones, E., Kern, R., "
                     "Larson, E., ... SciPy 1.0 Contributors. (2020). SciPy 1.0: Fundamental algorithms for "
                     "scientific computing in Python. *Nature Methods, 17*(3), 261–272. "
                     "https://doi.org/10.1038/s41592-019-0686-2"),
    "yuan2000": ("Yuan & Bentler", "2000", "Yuan, K.-H., & Bentler, P. M. (2000). Three likelihood-based methods for "
                 "mean and covariance structure analysis with nonnormal missing data. *Sociological Methodology, "
                 "30*(1), 165–200. https://doi.org/10.1111/0081-1750.00078"),
}


def in_text(key: str) -> str:
    """The parenthetical citation of one reference: ``Hu & Bentler, 1999``."""
    authors, year, _ = REFERENCES[key]
    return f"{authors}, {year}"


@dataclass
class Citations:
    """The keys cited so far, in order of first citation."""

    keys: list = field(default_factory=list)

    def cite(self, *keys: str) -> str:
        """Record ``keys`` and return their citations joined as APA joins them (``A, 1999; B, 2007``)."""
        for k in keys:
            if k not in REFERENCES:
                raise KeyError(f"no reference {k!r} in pipeline.report.references.REFERENCES")
            if k not in self.keys:
                self.keys.append(k)
        return "; ".join(in_text(k) for k in keys)

    def entries(self) -> list[str]:
        """The reference list: every cited entry, in APA order (by its text: first author, year)."""
        return sorted((REFERENCES[k][2] for k in self.keys), key=lambda e: e.lower())
