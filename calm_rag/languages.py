"""The language registry: one `Language` entry per supported language.

Each entry carries everything that is language-specific in calm-rag: the localized
multiple-choice prompt (as in the CALM paper, the model explains in the question's
language and ends with the localized answer label), the words that mark an answer in
what models write, and the localized free-form answer prompt. Adding a language is
adding one entry to `LANGUAGES`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from calm_rag.errors import CalmRagError


@dataclass(frozen=True)
class Language:
    """Localized prompt pieces and answer markers for one language."""

    code: str
    name: str
    instruction: str
    """Chain-of-thought instruction: explain in this language, end with the answer label."""
    direct_instruction: str
    """Instruction for `direct` mode: the answer label and letter only."""
    question_label: str
    options_label: str
    explanation_label: str
    answer_label: str
    context_label: str
    """Heading above retrieved passages in RAG prompts."""
    colon: str = ": "
    answer_markers: tuple[str, ...] = ()
    """Further words that introduce an answer in model output, besides `answer_label`."""
    open_instruction: str = ""
    """Instruction for open questions: a short explanation, then a concise final answer line."""

    @property
    def markers(self) -> tuple[str, ...]:
        """Every answer marker to look for, longest first (so 'Final answer' wins over 'answer')."""
        found = {self.answer_label, *self.answer_markers, "Answer", "Final answer"}
        return tuple(sorted(found, key=len, reverse=True))

    def answer_line(self, label: str, text: str | None = None) -> str:
        """The canonical final line, e.g. 'Antwort: C) Krankenhaus'."""
        stated = f"{label}) {text}" if text else label
        return f"{self.answer_label}{self.colon}{stated}"


def _entry(code: str, name: str, instruction: str, direct: str, freeform: str, question: str, options: str,
           explanation: str, answer: str, context: str, markers: tuple[str, ...], colon: str = ": ") -> Language:
    return Language(code=code, name=name, instruction=instruction, direct_instruction=direct,
                    open_instruction=freeform, question_label=question, options_label=options,
                    explanation_label=explanation, answer_label=answer, context_label=context, colon=colon,
                    answer_markers=markers)


LANGUAGES: dict[str, Language] = {lang.code: lang for lang in [
    _entry("en", "English",
           'Answer the following multiple-choice question. First explain your reasoning briefly in English, '
           'then finish with a last line of the form "Answer: X", where X is the letter of the correct option.',
           'Answer the following multiple-choice question with the letter of the correct option only, '
           'in the form "Answer: X".',
           'Answer the following question. Explain briefly in English if needed, then finish with a last line '
           'of the form "Answer: ..." that states only the short answer.',
           "Question", "Options", "Explanation", "Answer", "Context",
           ("The answer is", "Correct answer", "Correct option")),
    _entry("zh", "Chinese",
           "请回答下面的选择题。先用中文简要说明理由，最后一行写成“答案：X”，其中 X 是正确选项的字母。",
           "请只用正确选项的字母回答下面的选择题，格式为“答案：X”。",
           "请回答下面的问题。如有需要先用中文简要说明，最后一行写成“答案：……”，只写简短的答案。",
           "问题", "选项", "解释", "答案", "参考资料", ("正确答案", "最终答案", "答", "选择", "应选"), colon="："),
    _entry("de", "German",
           'Beantworte die folgende Multiple-Choice-Frage. Erkläre deine Überlegung zuerst kurz auf Deutsch '
           'und schließe mit einer letzten Zeile der Form "Antwort: X", wobei X der Buchstabe der richtigen Option ist.',
           'Beantworte die folgende Multiple-Choice-Frage nur mit dem Buchstaben der richtigen Option, '
           'in der Form "Antwort: X".',
           'Beantworte die folgende Frage. Erkläre bei Bedarf kurz auf Deutsch und schließe mit einer letzten '
           'Zeile der Form "Antwort: ...", die nur die kurze Antwort nennt.',
           "Frage", "Optionen", "Erklärung", "Antwort", "Kontext",
           ("Die Antwort ist", "Richtige Antwort", "Lösung", "Endgültige Antwort")),
    _entry("fr", "French",
           'Réponds à la question à choix multiples suivante. Explique d\'abord brièvement ton raisonnement en '
           'français, puis termine par une dernière ligne de la forme « Réponse : X », où X est la lettre de la bonne option.',
           'Réponds à la question à choix multiples suivante uniquement par la lettre de la bonne option, '
           'sous la forme « Réponse : X ».',
           'Réponds à la question suivante. Explique brièvement en français si nécessaire, puis termine par une '
           'dernière ligne de la forme « Réponse : ... » qui donne seulement la réponse courte.',
           "Question", "Options", "Explication", "Réponse", "Contexte",
           ("La réponse est", "Bonne réponse", "Réponse finale"), colon=" : "),
    _entry("it", "Italian",
           'Rispondi alla seguente domanda a scelta multipla. Spiega prima brevemente il tuo ragionamento in '
           'italiano, poi concludi con un\'ultima riga della forma "Risposta: X", dove X è la lettera dell\'opzione corretta.',
           'Rispondi alla seguente domanda a scelta multipla solo con la lettera dell\'opzione corretta, '
           'nella forma "Risposta: X".',
           'Rispondi alla seguente domanda. Spiega brevemente in italiano se serve, poi concludi con un\'ultima '
           'riga della forma "Risposta: ..." che riporta solo la risposta breve.',
           "Domanda", "Opzioni", "Spiegazione", "Risposta", "Contesto",
           ("La risposta è", "Risposta corretta", "Risposta finale")),
    _entry("ja", "Japanese",
           "次の多肢選択問題に答えてください。まず日本語で簡潔に理由を説明し、最後の行を「答え：X」の形式で書いてください（X は正しい選択肢の記号）。",
           "次の多肢選択問題に、正しい選択肢の記号だけで「答え：X」の形式で答えてください。",
           "次の質問に答えてください。必要なら日本語で簡潔に説明し、最後の行に「答え：……」の形式で短い答えだけを書いてください。",
           "質問", "選択肢", "説明", "答え", "参考資料", ("正解", "回答", "解答", "答"), colon="："),
    _entry("ar", "Arabic",
           'أجب عن سؤال الاختيار من متعدد التالي. اشرح أولاً تفكيرك باختصار باللغة العربية، ثم اختم بسطر أخير '
           'بالشكل "الإجابة: X" حيث X هو حرف الخيار الصحيح.',
           'أجب عن سؤال الاختيار من متعدد التالي بحرف الخيار الصحيح فقط، بالشكل "الإجابة: X".',
           'أجب عن السؤال التالي. اشرح باختصار بالعربية إذا لزم الأمر، ثم اختم بسطر أخير بالشكل "الإجابة: ..." '
           'يذكر الإجابة القصيرة فقط.',
           "السؤال", "الخيارات", "الشرح", "الإجابة", "السياق", ("الجواب", "الإجابة الصحيحة")),
    _entry("es", "Spanish",
           'Responde a la siguiente pregunta de opción múltiple. Explica primero brevemente tu razonamiento en '
           'español y termina con una última línea de la forma "Respuesta: X", donde X es la letra de la opción correcta.',
           'Responde a la siguiente pregunta de opción múltiple solo con la letra de la opción correcta, '
           'en la forma "Respuesta: X".',
           'Responde a la siguiente pregunta. Explica brevemente en español si hace falta y termina con una última '
           'línea de la forma "Respuesta: ..." que indique solo la respuesta corta.',
           "Pregunta", "Opciones", "Explicación", "Respuesta", "Contexto",
           ("La respuesta es", "Respuesta correcta", "Respuesta final")),
    _entry("ru", "Russian",
           'Ответь на следующий вопрос с вариантами ответа. Сначала кратко объясни рассуждение на русском языке, '
           'затем закончи последней строкой вида "Ответ: X", где X — буква правильного варианта.',
           'Ответь на следующий вопрос с вариантами ответа только буквой правильного варианта, в виде "Ответ: X".',
           'Ответь на следующий вопрос. При необходимости кратко объясни на русском, затем закончи последней '
           'строкой вида "Ответ: ...", где указан только краткий ответ.',
           "Вопрос", "Варианты", "Объяснение", "Ответ", "Контекст", ("Правильный ответ", "Итоговый ответ")),
    _entry("ko", "Korean",
           '다음 객관식 질문에 답하세요. 먼저 한국어로 이유를 간단히 설명한 뒤, 마지막 줄을 "정답: X" 형식으로 쓰세요 (X는 올바른 선택지의 문자).',
           '다음 객관식 질문에 올바른 선택지의 문자만으로 "정답: X" 형식으로 답하세요.',
           '다음 질문에 답하세요. 필요하면 한국어로 간단히 설명하고, 마지막 줄을 "정답: ..." 형식으로 짧은 답만 쓰세요.',
           "질문", "선택지", "설명", "정답", "참고 자료", ("답변", "답")),
    _entry("hi", "Hindi",
           'निम्नलिखित बहुविकल्पीय प्रश्न का उत्तर दें। पहले हिंदी में संक्षेप में अपना तर्क समझाएँ, फिर अंतिम पंक्ति '
           '"उत्तर: X" के रूप में लिखें, जहाँ X सही विकल्प का अक्षर है।',
           'निम्नलिखित बहुविकल्पीय प्रश्न का उत्तर केवल सही विकल्प के अक्षर से "उत्तर: X" के रूप में दें।',
           'निम्नलिखित प्रश्न का उत्तर दें। आवश्यक हो तो हिंदी में संक्षेप में समझाएँ, फिर अंतिम पंक्ति "उत्तर: ..." '
           'के रूप में केवल छोटा उत्तर लिखें।',
           "प्रश्न", "विकल्प", "व्याख्या", "उत्तर", "संदर्भ", ("सही उत्तर", "अंतिम उत्तर")),
    _entry("pt", "Portuguese",
           'Responda à seguinte pergunta de múltipla escolha. Explique primeiro brevemente o seu raciocínio em '
           'português e termine com uma última linha da forma "Resposta: X", em que X é a letra da opção correta.',
           'Responda à seguinte pergunta de múltipla escolha apenas com a letra da opção correta, '
           'na forma "Resposta: X".',
           'Responda à seguinte pergunta. Explique brevemente em português se necessário e termine com uma última '
           'linha da forma "Resposta: ..." que indique apenas a resposta curta.',
           "Pergunta", "Opções", "Explicação", "Resposta", "Contexto",
           ("A resposta é", "Resposta correta", "Resposta final")),
]}

PAPER_LANGUAGES: tuple[str, ...] = ("en", "zh", "de", "fr", "it", "ja")
"""The six languages of the CALM paper's X-CSQA experiments."""


def get_language(code: str) -> Language:
    """The registry entry for `code`, or a `CalmRagError` that lists the known codes."""
    try:
        return LANGUAGES[code.strip().lower()]
    except KeyError:
        known = ", ".join(sorted(LANGUAGES))
        raise CalmRagError(f"unknown language code {code!r}; known: {known}") from None


def parse_languages(spec: str | list[str] | tuple[str, ...]) -> list[str]:
    """'en,zh,de' or a list -> validated, de-duplicated codes in the given order."""
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    codes: list[str] = []
    for item in items:
        if not item.strip():
            continue
        code = get_language(item).code
        if code not in codes:
            codes.append(code)
    if not codes:
        raise CalmRagError("no languages given; pass e.g. --languages en,zh,de")
    return codes


_LANGUAGE_TAG = re.compile(r"[a-z]{2,3}(?:-[A-Za-z0-9]{2,8})*")
MAX_LANGUAGE_TAG = 35
"""RFC 5646 asks implementations to handle tags of at least 35 characters; longer ones are not language tags."""


def is_language_tag(value: object) -> bool:
    """Whether `value` may stand as a document's language: a registry code, or a BCP-47-shaped tag
    ('pt-BR', 'zh-Hant', 'yue'). What this refuses can never reach a prompt as a language (prompt injection
    through a corpus's `lang` field)."""
    if not isinstance(value, str) or len(value) > MAX_LANGUAGE_TAG:
        return False
    return value in LANGUAGES or _LANGUAGE_TAG.fullmatch(value) is not None
