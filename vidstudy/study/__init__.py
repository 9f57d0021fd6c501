"""What the book's chapters need: the book runner and the study built on the package's stages.

``book`` (``vidstudy book``: the chapter list, execution, the HTML build), ``chapter`` (the chapters'
parameters, declared once, and a chapter's data folder, config and run folder), ``report`` (the tables and
glued values), ``anomaly`` (the Animation analysis), ``experiments`` (the improvement experiments),
``recipes`` (the recipe study, its sizes and its verdict), ``families`` (every model family under one set of
rules: the choice on validation, the comparisons, the costs), ``claims`` (the study's claims as comparisons
with CIs), ``crosssource`` (leaving sources out, every one once), ``simcompare`` (simulator against real
statistics), ``classifying`` (the clips and the joined video the classifying chapter classifies), ``youtube8m`` (shards in
YouTube-8M's format, the shipped mappings as a table) and
``findings`` (the headline sentences the Findings page pastes). It reads runs and predictions stores through
the flat core; nothing in the core imports it.
"""
