"""Name lists for generated people and places (display only: ids stay opaque)."""

from __future__ import annotations

import random

SURNAMES = "".join(
    [
        "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁",
        "谢宋唐许韩冯邓曹彭曾肖田董潘袁蔡蒋余于杜叶程魏苏吕丁任沈姚卢",
    ]
)
FEMALE_GIVEN = (
    "秀英",
    "桂英",
    "秀兰",
    "玉兰",
    "桂兰",
    "凤英",
    "玉珍",
    "秀珍",
    "淑珍",
    "美华",
    "翠花",
    "金凤",
    "彩云",
    "月娥",
    "素芬",
    "菊花",
)
MALE_GIVEN = (
    "建国",
    "国强",
    "德明",
    "志强",
    "永福",
    "长生",
    "福生",
    "金生",
    "根生",
    "水根",
    "明华",
    "文华",
    "树林",
    "振华",
    "有才",
    "海林",
)
YOUNGER_GIVEN = ("伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "涛")

TOWNSHIPS = (
    "西屏",
    "水南",
    "望松",
    "古市",
    "象溪",
    "大东坝",
    "新兴",
    "赤寿",
    "斋坛",
    "玉岩",
    "叶村",
    "三都",
    "四都",
    "安民",
    "枫坪",
    "板桥",
    "裕溪",
    "竹源",
    "樟溪",
)
VILLAGE_FIRST = "上下东西南北大小前后新老石竹桥塘岭坑山溪"
VILLAGE_SECOND = (
    "田",
    "岭",
    "坑",
    "源",
    "头",
    "坪",
    "岗",
    "塘",
    "湾",
    "村",
    "口",
    "垟",
    "庄",
    "坞",
)


def person_name(r: random.Random, sex: str) -> str:
    given = FEMALE_GIVEN if sex == "female" else MALE_GIVEN
    return r.choice(SURNAMES) + r.choice(given)


def younger_name(r: random.Random) -> str:
    return r.choice(SURNAMES) + r.choice(YOUNGER_GIVEN)


def village_name(r: random.Random, taken: set[str]) -> str:
    for _ in range(50):
        name = r.choice(VILLAGE_FIRST) + r.choice(VILLAGE_SECOND) + "村"
        if name not in taken:
            taken.add(name)
            return name
    name = f"{r.choice(VILLAGE_FIRST)}{r.choice(VILLAGE_SECOND)}{len(taken)}村"
    taken.add(name)
    return name
