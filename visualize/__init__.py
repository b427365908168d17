"""See inside a microGPT model: analysis (model_analyzer), figures (plots), Japanese glyphs (fonts),
and the headless report builder (render). The notebooks v1..v5 beside this file are thin views on top.

    python -m visualize.render --model model.json --out runs/report
    MICROGPT_MODEL=../shared/data/seed_models/haiku_orgparam_model.json jupyter lab visualize/
"""
