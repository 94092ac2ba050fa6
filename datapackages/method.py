"""Method metadata: what protection was applied, its parameters and what each flag means (kk/ru/en).

Only parameters from the spec and counts taken from the published table itself go into the
package, plus a whitelist of scalar facts from the protection report (never a cell value: the
report may hold internal detail, and nothing is copied from it wholesale).
"""

from __future__ import annotations

from typing import Any

from disclosure.spec import TableSpec

FLAG_LABELS: dict[str, dict[str, dict[str, str]]] = {
    "obs_status": {
        "A": {"kk": "Қалыпты мән", "ru": "Нормальное значение", "en": "Normal value"},
        "Q": {"kk": "Жоқ мән; құпиялылық үшін жасырылған",
              "ru": "Отсутствующее значение; скрыто в целях конфиденциальности",
              "en": "Missing value; suppressed"},
    },
    "conf_status": {
        "F": {"kk": "Еркін (жариялауға болады)", "ru": "Свободное (не конфиденциально)",
              "en": "Free (not confidential)"},
        "C": {"kk": "Құпия статистикалық ақпарат (бастапқы жасыру)",
              "ru": "Конфиденциальная статистическая информация (первичное подавление)",
              "en": "Confidential statistical information (primary suppression)"},
        "D": {"kk": "Қайталама құпиялылық (бастапқы ұяшықтарды қорғау үшін жасырылған)",
              "ru": "Вторичная конфиденциальность (скрыто для защиты первичных ячеек)",
              "en": "Secondary confidentiality (suppressed to protect primary cells)"},
    },
}

# Flags a table protected by each method may carry (the Table Schema enums).
FLAGS = {
    "suppression": {"obs_status": ("A", "Q"), "conf_status": ("F", "C", "D")},
    "noise": {"obs_status": ("A",), "conf_status": ("F",)},
}

FIELD_TEXT = {
    "obs_status": {"kk": "Бақылау мәртебесі (SDMX CL_OBS_STATUS)",
                   "ru": "Статус наблюдения (SDMX CL_OBS_STATUS)",
                   "en": "Observation status (SDMX CL_OBS_STATUS)"},
    "conf_status": {"kk": "Құпиялылық мәртебесі (SDMX CL_CONF_STATUS)",
                    "ru": "Статус конфиденциальности (SDMX CL_CONF_STATUS)",
                    "en": "Confidentiality status (SDMX CL_CONF_STATUS)"},
    "obs_moe": {"kk": "Қателік шегі (шу есебінен)", "ru": "Предел погрешности (из-за шума)",
                "en": "Margin of error (due to noise)"},
}

_SECONDARY = {
    "optimal": {"kk": "оңтайлы (ақпараттың ең аз жоғалуы, сызықтық бағдарламалау)",
                "ru": "оптимальный (минимальная потеря информации, линейное программирование)",
                "en": "optimal (least loss of information, linear programming)"},
    "heuristic": {"kk": "эвристикалық", "ru": "эвристический", "en": "heuristic"},
    "none": {"kk": "қолданылмаған", "ru": "не применялся", "en": "not applied"},
}


def _scalars(d: Any, keys: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(d, dict):
        return {}
    return {k: d[k] for k in keys if isinstance(d.get(k), bool | int | float | str)
            and not (isinstance(d.get(k), str) and len(d[k]) > 200)}


def suppression_method(spec: TableSpec, counts: dict[str, int], report: dict | None) -> dict:
    """Method block for a suppression table: parameters, counts, honest text in kk/ru/en."""
    dis = spec.disclosure
    k = dis.min_frequency
    sec = dis.secondary
    rep = report or {}
    sec_rep = rep.get("secondary") if isinstance(rep.get("secondary"), dict) else {}
    applied = sec != "none" and sec_rep.get("applied", True) is not False
    zeros = dis.zero_policy == "primary"
    params: dict[str, Any] = {
        "min_frequency": k, "zero_policy": dis.zero_policy, "secondary": sec,
        "secondary_applied": applied, "cost": dis.cost,
        "manual_confidential_cells": len(dis.confidential),
    }
    level = None
    if dis.protection_level is not None:
        level = (dis.protection_level.kind, float(dis.protection_level.value))
    rp = rep.get("parameters") if isinstance(rep.get("parameters"), dict) else {}
    pl = rp.get("protection_level")
    if level is None and isinstance(pl, dict) and pl.get("kind") in ("absolute", "percent") \
            and isinstance(pl.get("value"), int | float) and not isinstance(pl["value"], bool):
        level = (pl["kind"], float(pl["value"]))
    if level is not None:
        params["protection_level"] = {level[0]: level[1]}
    if isinstance(rp.get("protection_rule"), str):
        params["protection_rule"] = rp["protection_rule"][:300]
    fallbacks = [f[:300] for f in rep.get("fallbacks") or [] if isinstance(f, str)][:20]
    if fallbacks:
        params["fallbacks"] = fallbacks
    audit = _scalars(rep.get("audit"), ("passed", "ok", "status", "method", "attacker",
                                        "primary_cells_checked", "cells_audited", "cells_checked",
                                        "exact", "narrow", "exposed", "min_width", "seconds"))
    rule = ({"kk": f"{k}-тен аз адам (нөлді қоса)", "ru": f"меньше {k} человек (включая ноль)",
             "en": f"fewer than {k} persons (zero included)"} if zeros else
            {"kk": f"0-ден көп, бірақ {k}-тен аз адам", "ru": f"больше 0, но меньше {k} человек",
             "en": f"more than 0 but fewer than {k} persons"})
    manual = len(dis.confidential)
    manual_txt = {"kk": f" Сонымен қатар {manual} ұяшық қолмен құпия деп белгіленген.",
                  "ru": f" Кроме того, {manual} ячеек отмечены как конфиденциальные вручную.",
                  "en": f" In addition, {manual} cell(s) were marked confidential by hand."}
    text = {}
    for lang in ("kk", "ru", "en"):
        s = _SECONDARY.get(sec, {"kk": sec, "ru": sec, "en": sec})[lang]
        if lang == "kk":
            t = (f"Ұяшықтарды жасыру. Ұяшықта {rule['kk']} есепке алынса, "
                 "ол бастапқы құпия ұяшық болып саналады (conf_status C). Бастапқы ұяшықтарды "
                 "жарияланған жиынтықтардан қайта есептеп шығаруға болмауы үшін қосымша ұяшықтар "
                 f"қайталама құпия ретінде жасырылады (conf_status D; әдісі: {s}). Жасырылған "
                 "ұяшықтардың obs_value мәні бос, obs_status мәні Q. Қалған мәндер өзгеріссіз "
                 f"жарияланады. Бастапқы жасырылғандар: {counts['C']}, қайталама: {counts['D']}, "
                 f"барлық ұяшық: {counts['cells']}.")
            if not applied:
                t += (" НАЗАР АУДАРЫҢЫЗ: қайталама жасыру қолданылмаған, сондықтан бастапқы "
                      "ұяшықты жиынтықтардан есептеп шығаруға болуы мүмкін.")
        elif lang == "ru":
            t = (f"Подавление ячеек. Ячейка первично конфиденциальна (conf_status C), если в ней "
                 f"учтено {rule['ru']}. Чтобы первичные ячейки нельзя было "
                 "вычислить из опубликованных итогов, дополнительные ячейки скрыты как вторично "
                 f"конфиденциальные (conf_status D; метод: {s}). У скрытых ячеек пустое значение "
                 "obs_value и obs_status Q. Остальные значения опубликованы без изменений. "
                 f"Первично скрыто: {counts['C']}, вторично: {counts['D']}, всего ячеек: "
                 f"{counts['cells']}.")
            if not applied:
                t += (" ВНИМАНИЕ: вторичное подавление не применялось, поэтому первичная ячейка "
                      "может быть вычислена из итогов.")
        else:
            t = (f"Cell suppression. A cell is primary confidential (conf_status C) when it counts "
                 f"{rule['en']}. So that primary cells cannot be "
                 "recomputed from the published totals, further cells are suppressed as secondary "
                 f"confidentiality (conf_status D; method: {s}). Suppressed cells have an empty "
                 "obs_value and obs_status Q. All other values are published unchanged. "
                 f"Primary suppressed: {counts['C']}, secondary: {counts['D']}, cells in all: "
                 f"{counts['cells']}.")
            if not applied:
                t += (" WARNING: secondary suppression was not applied, so a primary cell may be "
                      "recomputable from totals.")
        if manual:
            t += manual_txt[lang]
        if level is not None and audit.get("passed") is True:
            v = f"{level[1]:g}"
            if lang == "kk":
                w = f"{v}" if level[0] == "absolute" else f"мәнінің {v}%"
                t += (" Шабуылдаушы аудиті (сызықтық бағдарламалау) өтті: жарияланған деректерден "
                      f"әр бастапқы ұяшық үшін шығаруға болатын аралықтың ені кемінде {w}.")
            elif lang == "ru":
                w = f"{v}" if level[0] == "absolute" else f"{v}% её значения"
                t += (" Аудит атакующего (линейное программирование) пройден: интервал, который "
                      "можно вывести из опубликованных данных для каждой первичной ячейки, имеет "
                      f"ширину не менее {w}.")
            else:
                w = f"{v}" if level[0] == "absolute" else f"{v}% of its value"
                t += (" An attacker audit (linear programming) passed: the interval that can be "
                      "derived from the published data for each primary cell is at least "
                      f"{w} wide.")
        if fallbacks:
            t += {"kk": " Ескерту: оңтайландыру уақыт шегінде аяқталмады, сондықтан жасыру "
                        "үлгісінің бір бөлігі эвристикалық әдістен алынды (қорғау сақталады, бірақ "
                        "қажетінен көп ұяшық жасырылуы мүмкін).",
                  "ru": " Примечание: оптимизация не завершилась за отведённое время, поэтому "
                        "часть схемы подавления получена эвристикой (защита сохраняется, но скрыто "
                        "может быть больше ячеек, чем необходимо).",
                  "en": " Note: the optimiser did not finish within its time limit, so part of "
                        "the suppression pattern comes from the heuristic (still protected, but "
                        "possibly more cells suppressed than necessary)."}[lang]
        text[lang] = t
    out = {"method": "suppression", "parameters": params,
           "cells": {"total": counts["cells"], "primary": counts["C"], "secondary": counts["D"]},
           "text": text, "flags": _flags("suppression")}
    if audit:
        out["audit"] = audit
    return out


def noise_method(spec: TableSpec, report: dict | None, *, non_negative: bool = False,
                 additive: bool = False) -> dict:
    """Method block for a noise (differential privacy) table, using the DP engineer's wording."""
    n = spec.disclosure.noise
    assert n is not None
    rep = report or {}
    params: dict[str, Any] = {"mechanism": n.mechanism, "epsilon": n.epsilon,
                              "privacy_unit": n.privacy_unit,
                              "contribution_bound": n.contribution_bound}
    # Public facts of the method from the DP report (disclosure.noise._report); no cell values.
    params.update(_scalars(rep, ("mechanism_detail", "noise_source", "differentially_private")))
    if isinstance(rep.get("mechanism"), str):
        params["mechanism_detail"] = rep["mechanism"][:200]
    params.update(_scalars(rep.get("privacy"), ("definition", "epsilon_certified",
                                                "contribution_bound_meaning", "neighbouring",
                                                "composition")))
    pp = rep.get("post_processing")
    if isinstance(pp, dict):
        post: dict[str, Any] = _scalars(pp, ("estimator", "clip_then_sum"))
        if isinstance(pp.get("steps"), list) and all(isinstance(x, str) for x in pp["steps"]):
            post["steps"] = [x[:300] for x in pp["steps"][:20]]
        params["post_processing"] = post
    unc = _scalars(rep.get("uncertainty"), ("column", "level", "method"))
    if unc:
        params["uncertainty"] = unc
    private = rep.get("differentially_private")
    text = _explain_noise(rep)
    if text is None:
        eps = f"{n.epsilon:g}"
        text = {
            "kk": (f"Дифференциалды құпиялылық: жарияланған әрбір сан (жиынтықтарды қоса) шынайы "
                   f"санға {n.mechanism} механизмінің кездейсоқ шуын қосу арқылы алынған; "
                   f"құпиялылық параметрі ε = {eps}, құпиялылық бірлігі: {n.privacy_unit}. "
                   "Шудың есебінен мәндер шынайы мәндерден өзгеше болуы мүмкін; obs_moe бағаны "
                   "қателік шегін көрсетеді. Өңдеудің толық сипаттамасы қорғау есебінде."),
            "ru": (f"Дифференциальная приватность: каждое опубликованное число (включая итоги) "
                   f"получено добавлением случайного шума механизма {n.mechanism} к истинному; "
                   f"параметр приватности ε = {eps}, единица приватности: {n.privacy_unit}. "
                   "Из-за шума значения могут отличаться от истинных; столбец obs_moe даёт предел "
                   "погрешности. Полное описание обработки — в отчёте о защите."),
            "en": (f"Differential privacy: every published count (totals included) is derived from "
                   f"the true count plus random noise from the {n.mechanism} mechanism; privacy-loss "
                   f"parameter ε = {eps}, privacy unit: {n.privacy_unit}. Because of the noise, "
                   "values may differ from the true counts; the obs_moe column gives the margin of "
                   "error. The protection report describes the processing in full."),
        }
    mech = _MECHANISM.get(n.mechanism, dict.fromkeys(("kk", "ru", "en"), n.mechanism))
    eps = f"{n.epsilon:g}"
    unit = _PRIVACY_UNIT.get(n.privacy_unit, dict.fromkeys(("kk", "ru", "en"), n.privacy_unit))
    # Facts of the published table (checked by the package build), not claims of the report.
    props = {"kk": ["бүтін"], "ru": ["целые"], "en": ["whole numbers"]}
    if non_negative:
        props["kk"].append("теріс емес")
        props["ru"].append("неотрицательные")
        props["en"].append("non-negative")
    if additive:
        props["kk"].append("әр жиынтық өз бөліктерінің қосындысына тең")
        props["ru"].append("каждый итог равен сумме своих частей")
        props["en"].append("every total equals the sum of its parts")
    else:
        props["kk"].append("жиынтықтар бөліктерінің қосындысына тең болмауы мүмкін")
        props["ru"].append("итоги могут не совпадать с суммой частей")
        props["en"].append("totals may differ from the sum of their parts")
    tech = {
        "kk": (f" Техникалық сипаттама: механизм — {mech['kk']}; ε = {eps} (таза "
               f"ε-дифференциалды құпиялылық); құпиялылық бірлігі: {unit['kk']}, әр бірлік "
               f"ең көбі {n.contribution_bound} ішкі ұяшықта есептеледі; жарияланған мәндер: "
               f"{', '.join(props['kk'])}."),
        "ru": (f" Технически: механизм — {mech['ru']}; ε = {eps} (чистая ε-дифференциальная "
               f"приватность); единица приватности: {unit['ru']}, каждая единица учтена не более "
               f"чем в {n.contribution_bound} внутренней ячейке(ах); опубликованные значения: "
               f"{', '.join(props['ru'])}."),
        "en": (f" Technical: mechanism {mech['en']}; ε = {eps} (pure ε-differential privacy); "
               f"privacy unit: {unit['en']}, each counted in at most {n.contribution_bound} "
               f"inner cell(s); published values: {', '.join(props['en'])}."),
    }
    text = {lg: text[lg] + tech[lg] for lg in ("kk", "ru", "en")}
    if private is False:
        warn = {"kk": " НАЗАР АУДАРЫҢЫЗ: шу сынақ генераторымен қосылған; бұл дифференциалды "
                      "құпиялылықпен қорғалған жарияланым ЕМЕС.",
                "ru": " ВНИМАНИЕ: шум добавлен тестовым генератором; это НЕ выпуск с "
                      "дифференциальной приватностью.",
                "en": " WARNING: the noise came from a seeded test sampler; this is NOT a "
                      "differentially private release."}
        text = {lg: text[lg] + warn[lg] for lg in ("kk", "ru", "en")}
    return {"method": "noise", "parameters": params, "text": text, "flags": _flags("noise")}


_MECHANISM = {"geometric": {"kk": "дискретті Лаплас (екі жақты геометриялық)",
                            "ru": "дискретный Лаплас (двусторонний геометрический)",
                            "en": "discrete Laplace (two-sided geometric)"}}


_PRIVACY_UNIT = {"person": {"kk": "адам", "ru": "человек", "en": "person"},
                 "household": {"kk": "үй шаруашылығы", "ru": "домохозяйство", "en": "household"},
                 "family": {"kk": "отбасы", "ru": "семья", "en": "family"}}


def _explain_noise(report: dict) -> dict[str, str] | None:
    """The DP engineer's ``disclosure.noise.explain_noise`` text, if that function exists."""
    try:
        from disclosure.noise import explain_noise  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - module absent or broken: fall back to our own text
        return None
    try:
        out = explain_noise(report)
    except Exception:  # noqa: BLE001 - an incomplete report: fall back to our own text
        return None
    if not isinstance(out, dict) or not all(isinstance(out.get(lg), str) and out.get(lg)
                                            for lg in ("kk", "ru", "en")):
        return None
    return {lg: out[lg] for lg in ("kk", "ru", "en")}


def _flags(method: str) -> dict[str, dict[str, dict[str, str]]]:
    return {col: {code: FLAG_LABELS[col][code] for code in codes}
            for col, codes in FLAGS[method].items()}
