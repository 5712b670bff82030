"""Citizen-facing sentences that more than one channel sends, rendered from data (one home each).

The outbox renders every later message here (`ticket_reply`), so the citizen reads the ticket
number once and one preamble, whichever channel carries it; channels that need structured fields
(WeChat's 订阅通知) take them from `ticket_reply_notice`, never from this prose.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from knowledge.models import CHINA_TZ
from knowledge.smalltalk import SmallTalkEntry


def ticket_reply(data: dict[str, Any]) -> str:
    """A staff reply pushed to the citizen: number and department once, then the reply."""
    department = str(data.get("department") or "").strip()
    head = (
        f"您的留言 {data.get('ticket_no', '')} 已有答复" + (f"（{department}）" if department else "") + "："
    )
    return f"{head}\n{str(data.get('reply') or '').strip()}"


def ticket_reply_notice(data: dict[str, Any], *, now: dt.datetime | None = None) -> dict[str, str]:
    """The fields of a notice (订阅通知 / 模板消息) for a channel that cannot send free text."""
    no = str(data.get("ticket_no") or "")
    when = (now or dt.datetime.now(CHINA_TZ)).astimezone(CHINA_TZ)
    return {
        "ticket_no": no,
        "department": str(data.get("department") or "政务公开"),
        "summary": f"已答复，请发送“查询 {no}”查看",
        "date": when.strftime("%Y-%m-%d"),
    }


# --- the policy library: superseded sources and service links (knowledge.answer data) ---------------
LINK_BROKEN = "办理入口维护中，可拨打12345咨询"


def superseded_notice(superseded: Any) -> str:
    """The answer's first line when the FAQ's source was repealed or revised: 《旧》已废止，现行为《新》。"""
    old = superseded.old
    new = superseded.new
    status = superseded.status
    verb = "已修订" if status == "已修订" else f"已{status}"
    return (
        f"您咨询的问题原依据《{old.title}》，该文件{verb}，现行为《{new.title}》"
        + (f"（{new.doc_no}）" if new.doc_no else "")
        + "。现行文件相关条款如下："
    )


def service_link_line(url: str | None, broken: bool) -> str:
    """The line under an answer with its service link (办事链接), or the maintenance notice."""
    if broken:
        return LINK_BROKEN
    return f"在线办理：{url}" if url else ""


# --- the conversation's sentences: one table a window can edit -------------------------------------
# Keys are stable; values are what the citizen reads. `{name}` fields are filled by `say`. A JSON file
# named by POLICYBOT_TEXTS_FILE ({"texts": {key: sentence}, "smalltalk": {intent: [phrases]}}) overrides
# entries without a code change (`load_overrides`, called once at start).
TEXTS: dict[str, str] = {
    "apology": "抱歉，系统暂时繁忙，您的问题没有处理成功，请稍后再试。",
    "empty": "请输入您要咨询的问题，例如：依申请公开多久答复？",
    "smalltalk.greeting": "您好！我是政策咨询助手，政务公开、信息公开申请、政策解读、留言办理这些问题都可以问我。",
    "smalltalk.greeting_tops": "您可以这样问：",
    "smalltalk.thanks": "不客气，能帮上忙就好。还有其他问题随时问我。",
    "smalltalk.farewell": "再见，祝您生活愉快！有问题随时再来找我。",
    "smalltalk.presence": "在的，我一直在线。请直接说说您想了解的政策问题。",
    "smalltalk.praise": "谢谢您的肯定！还有什么想了解的，请直接问我。",
    "smalltalk.emoji": "收到～如果有政策方面的问题，请直接用文字告诉我。",
    "smalltalk.who": "我是政策咨询助手，根据已公开的政策文件和常见问题解答为您答疑；答不上来的问题可以留言给工作人员。",
    "scope.outside": "抱歉，这个问题不在政策咨询的范围内，我没法回答。我可以帮您解答政务公开、政府信息公开申请、政策解读和政策留言办理等方面的问题。",
    "scope.examples": "例如：",
    "answer.source": "来源：{citation}",
    "answer.rate_prompt": "这条答复对您有帮助吗？请回复“有用”或“没用”。",
    "answer.followup": "（接着“{topic}”的话题）",
    "followup.uncovered": "关于“{topic}”，知识库中暂时没有这个问题的答复。",
    "clarify.lead": "您想咨询的是下面哪个问题？请回复序号或点击：",
    "clarify.lead_web": "您想咨询的是下面哪个问题？请点击：",
    "choice.stale": "该问题已更新，请重新输入您的问题。",
    "passage.lead": "知识库中暂无这个问题的标准答复，以下政策原文可能与您的问题有关：",
    "handoff.lead_explicit": "好的，您可以给工作人员留言，我们将在{days}个工作日内答复。",
    "handoff.lead_offer": "如需工作人员解答，您可以留言，我们将在{days}个工作日内答复。",
    "handoff.lead_category": "好的，请留下您的{category}内容，我们将在{days}个工作日内答复。",
    "handoff.fill_form": "请填写留言表单。",
    "handoff.reply_word": "请回复“留言”。",
    "handoff.ask_question": "请用一句话描述您要咨询的问题（回复“取消”放弃）。",
    "handoff.ask_category": "请用一句话写下具体内容（回复“取消”放弃）。",
    "handoff.question_is": "留言内容：{question}",
    "handoff.contact_prompt": (
        "如需工作人员联系您，请回复“同意 姓名 手机号”（{consent}）；无需联系请回复“匿名”；回复“取消”放弃留言。"
    ),
    "handoff.consent": "您提供的姓名和手机号仅用于工作人员就本条留言与您联系，不会公开，办结后按规定期限删除。",
    "handoff.received": "收到。",
    "handoff.cancelled": "已取消留言。您可以继续提问。",
    "handoff.no_phone": "没有识别到手机号，请按“同意 姓名 手机号”回复，或回复“匿名”。",
    "ticket.card": "留言已提交，我们会在答复期限前答复您（{department}）。\n留言编号：{no}\n答复期限：{due}\n查询码：{code}\n答复后会在这里通知您；凭留言编号和查询码也可在政策留言板查看。",
    "ticket.queued": "您的留言已收到。系统正在维护，恢复后将生成留言编号并在这里通知您，请勿重复提交。",
    "ticket.spooled_lead": "您在系统维护期间提交的留言已登记。",
    "ticket.empty": "请填写您要咨询的问题。",
    "ticket.too_long": "问题请控制在{n}字以内。",
    "ticket.need_consent": "留下联系方式前，请先阅读并勾选同意个人信息使用说明。",
    "ticket.bad_phone": "请填写正确的11位手机号码。",
    "status.not_found": "没有找到编号为 {no} 的本人留言，请核对编号；也可在政策留言板凭留言编号和查询码查询。",
    "status.line": "留言 {no}：{status}。答复期限：{due}。",
    "status.unavailable": "系统正在维护，暂时无法查询留言，请稍后再试。",
    "status.reply": "答复（{department}）：{reply}",
    "rating.thanks": "感谢您的评价！",
    "rating.already": "您已评价过这条答复。",
    "rating.cannot": "该答复已评价或无法评价。",
    "rating.useless": "抱歉没能帮上忙，我们会改进这条答复。",
    "rating.next_best": "您想问的是不是下面的问题？请回复序号或点击：",
    "rating.next_best_web": "您想问的是不是下面的问题？请点击：",
    "rating.handoff_web": "都不是？请给工作人员留言，我们将在{days}个工作日内答复。",
    "rating.handoff_text": "都不是？回复“留言”请工作人员解答，我们将在{days}个工作日内答复。",
    "ticket_rating.prompt": "请评价这条答复：回复 1 满意、2 基本满意、3 不满意。",
    "ticket_rating.thanks": "感谢您的评价！这条留言已办结。",
    "ticket_rating.reopened": "抱歉答复没有解决您的问题，留言 {no} 已重新交给工作人员办理，并由负责人跟进。",
    "ticket_rating.already": "留言 {no} 已评价过，感谢您的反馈。",
    "ticket_rating.nothing": "目前没有待评价的答复。如需评价，请回复“评价 留言编号 1/2/3”。",
    "ticket_rating.not_yet": "留言 {no} 还没有答复，答复后才能评价。",
    "ticket_rating.unavailable": "系统正在维护，暂时无法评价，请稍后再试。",
    "sensitive.flagged": "您的消息已转交工作人员处理，不作自动答复。\n留言编号：{no}",
    "sensitive.queued": "您的消息已转交工作人员处理，不作自动答复。",
    "channel.please_type": "目前只能识别文字消息，请直接输入您要咨询的问题（文字），例如：依申请公开多久答复？",
    "channel.unknown_menu": "该菜单暂未开放，请直接输入您要咨询的问题。",
    "channel.status_usage": "用法：/status 留言编号，例如 /status LY20250101-0001",
    "channel.stale_button": "该选项已失效，请直接输入您的问题。",
    "channel.busy": "抱歉，系统暂时繁忙，请稍后再试。",
    "voice.unrecognised": "抱歉，没能识别这段语音，请改用文字输入，或点击下方菜单选择常见问题。",
    # the website widget's own labels, validation and network messages (GET /api/v1/widget/texts)
    "widget.title": "政策咨询",
    "widget.open": "打开{title}",
    "widget.open_unread": "打开{title}（{n}条新消息）",
    "widget.close": "关闭对话窗口",
    "widget.close_short": "关闭",
    "widget.skip": "跳到{title}",
    "widget.subtitle": "智能问答 · 人工留言",
    "widget.care": "关怀模式",
    "widget.lookup": "查询留言",
    "widget.lookup_placeholder": "请输入留言编号，如 LY20260101-0001",
    "widget.lookup_submit": "查询",
    "widget.lookup_bad": "请输入正确的留言编号（字母、数字和“-”）。",
    "widget.lookup_not_found": "未找到该留言。只能查询在本设备上提交的留言，请核对编号。",
    "widget.log": "对话记录",
    "widget.input_placeholder": "请输入您要咨询的问题",
    "widget.input_label": "输入您的问题",
    "widget.send": "发送",
    "widget.footnote": "智能答复仅供参考，以正式发布的政策文件为准。请勿填写身份证号等敏感信息。",
    "widget.welcome": "您好，我是政策咨询智能助手，请问有什么可以帮您？",
    "widget.me": "我：",
    "widget.bot": "客服：",
    "widget.typing": "正在回复…",
    "widget.retry": "重试",
    "widget.source_title": "《{title}》",
    "widget.untitled": "未命名文件",
    "widget.view_original": "查看{label}原文",
    "widget.sources": "来源：",
    "widget.suggestions": "您可能想问",
    "widget.submitting": "正在提交…",
    "widget.rated": "感谢您的评价",
    "widget.useful": "有用",
    "widget.useless": "没用",
    "widget.rate_label": "评价这条答复",
    "widget.rate_question": "这条答复对您有帮助吗？",
    "widget.ticket_rate_label": "评价工作人员的答复",
    "widget.ticket_rate_question": "您对这条答复满意吗？",
    "widget.date": "{y}年{m}月{d}日",
    "widget.ticket_no": "留言编号",
    "widget.due": "答复期限",
    "widget.code": "查询码",
    "widget.status": "办理状态",
    "widget.question": "留言内容",
    "widget.replied_at": "答复时间",
    "widget.status_head": "留言办理情况",
    "widget.reply_label": "答复：",
    "widget.no_reply_yet": "尚未答复，请耐心等待。",
    "widget.ticket_opened": "留言已提交",
    "widget.ticket_received": "留言已收到",
    "widget.ticket_hint": "工作人员答复后将显示在本对话中；凭留言编号和查询码也可在政策留言板查看。",
    "widget.ticket_queued_hint": "系统恢复后，留言编号将显示在本对话中。",
    "widget.reply_ticket": "留言 {no}",
    "widget.ticket_inline": "留言编号：{no}",
    "widget.form_title": "留言给工作人员",
    "widget.form_hint": "工作人员将在规定的工作日内答复。",
    "widget.form_category": "留言类型",
    "widget.form_question": "留言内容（必填）",
    "widget.form_name": "姓名（选填）",
    "widget.form_phone": "联系电话（选填）",
    "widget.form_phone_hint": "填写后工作人员可能电话联系您；不填写也可在本对话中查看答复。",
    "widget.form_consent": (
        "我同意将上述姓名和联系电话提供给负责答复的政府工作人员，仅用于办理和答复本次留言，"
        "办结后按规定期限删除，不作其他用途。（填写姓名或电话时必须勾选）"
    ),
    "widget.form_submit": "提交留言",
    "widget.form_cancel": "取消",
    "widget.form_cancelled": "已取消留言。如需留言，可随时输入“留言”。",
    "widget.form_question_empty": "请填写留言内容。",
    "widget.form_question_short": "留言内容过短，请至少填写{n}个字，说明您的问题。",
    "widget.form_name_long": "姓名不能超过{n}个字。",
    "widget.form_phone_bad": "请输入正确的手机号码或固定电话（如 13800138000 或 010-12345678）。",
    "widget.form_consent_missing": "填写姓名或联系电话时，请先阅读并勾选同意。",
    "widget.network": "网络连接失败，请检查网络后重试。",
    "widget.server": "服务暂时不可用，请稍后再试。",
    "widget.too_long": "内容过长，请精简后再提交。",
    "widget.bad_input": "提交的内容格式不正确，请检查后重试。",
    "widget.too_many": "提问过于频繁，请稍后再试。",
    "widget.not_found": "未找到相关记录。",
    # --- the 12345 / 12333 hotline bridge (bot/channels/hotline.py): answers to the hotline system ---
    "hotline.disabled": "未启用热线对接（未配置 POLICYBOT_HOTLINE_SECRET）。",
    "hotline.bad_signature": "签名无效：请用共享密钥对“时间戳.请求体”计算 HMAC-SHA256，并在 X-Policybot-Signature 中写成 sha256=<十六进制>。",
    "hotline.stale": "时间戳无效或已过期：X-Policybot-Timestamp 须为当前 Unix 秒数，误差不超过{seconds}秒。",
    "hotline.replayed": "该签名已使用过（重放的请求），请用新的时间戳重新签名后发送。",
    "hotline.bad_body": "请求内容不正确：{problems}",
    "hotline.unknown_ticket": "未找到留言 {no}。",
    "hotline.already_answered": "留言 {no} 已答复（{status}），不能再次答复。",
    # staff notifications by e-mail (bot/staffnotify.py); staff-facing, one mail may hold several items
    "staff_mail.kind.new": "新留言",
    "staff_mail.kind.warning": "即将到期",
    "staff_mail.kind.overdue": "已超期（督办）",
    "staff_mail.kind.dissatisfied": "不满意评价（督办）",
    "staff_mail.subject_one": "【{kind}】{no} {department}",
    "staff_mail.subject_many": "【政策留言提醒】{summary}",
    "staff_mail.summary_part": "{kind} {n} 条",
    "staff_mail.intro": "您好：\n\n以下政策留言需要您关注（共 {n} 条）：",
    "staff_mail.item": (
        "【{kind}】{no}\n承办部门：{department}\n留言类别：{category}\n办理期限：{due_date}\n"
        "当前状态：{status}\n内容摘要（已脱敏）：{excerpt}\n办理链接：{link}"
    ),
    "staff_mail.hint.warning": "提示：距办理期限仅剩一个工作日，请尽快答复。",
    "staff_mail.hint.overdue": "提示：该留言已超过办理期限仍未办结，请督办。",
    "staff_mail.hint.dissatisfied": "提示：留言人对答复表示不满意，请督办。",
    "staff_mail.footer": "请登录工作台办理，留言人的联系方式请在工作台内查看。\n\n—— 政策咨询机器人（自动发送，请勿直接回复）",
    # time limits: 延期 and 补正 (handoff/tickets/extensions.py, supplements.py)
    "notice.extended": "您的留言{no}经审批延期办理，答复期限延长至{due}。延期原因：{reason}",
    "notice.supplement": (
        "您的留言{no}需要补充以下信息：\n{request}\n"
        "请直接回复本消息补充（也可在“政策留言公开答复”页面输入留言编号和查询码补充），请于{deadline}前补充。"
        "补充前办理时限暂停计算；逾期未补充的，将按现有材料继续办理。"
    ),
    "notice.resumed": "已收到您对留言{no}的补充，办理时限恢复计算，答复期限为{due}。",
    "notice.resumed_staff": "您的留言{no}已恢复办理，办理时限恢复计算，答复期限为{due}。",
    "notice.resumed_limit": "您的留言{no}补充期限已过，我们将按现有材料继续办理，办理时限恢复计算，答复期限为{due}。",
    "supplement.received": "已收到您对留言{no}的补充，已转给工作人员。办理时限恢复计算，答复期限为{due}。",
    "supplement.failed": "您的补充内容暂时未能提交，请稍后再发送一次。",
    # --- subscriptions (政策订阅): chat commands, widget checkboxes, pushes -----------------------------
    "subscribe.usage": "请发送“订阅 主题”订阅政策更新，如“订阅 {example}”。可订阅的主题：{topics}",
    "subscribe.none_available": "暂未开放政策订阅主题，请稍后再试。",
    "subscribe.done": "已订阅“{tag}”。该主题有新政策或新问答发布时，我们会在这里通知您（夜间不打扰）。发送“退订 {tag}”可随时取消。",
    "subscribe.already": "您已订阅“{tag}”，无需重复订阅。",
    "unsubscribe.usage": "请发送“退订 主题”取消订阅，如“退订 {example}”。您当前订阅：{tags}",
    "unsubscribe.done": "已退订“{tag}”，今后不再推送该主题的消息。",
    "unsubscribe.not_subscribed": "您没有订阅“{tag}”。您当前订阅：{tags}",
    "subscriptions.list": "您当前订阅的主题：{tags}。发送“退订 主题”可取消订阅。",
    "subscriptions.empty": "您还没有订阅任何主题。发送“订阅 主题”即可订阅，可订阅的主题：{topics}",
    "subscriptions.unavailable": "订阅服务暂时不可用，请稍后再试。",
    "subscriptions.nothing": "无",
    "push.policy": "【政策订阅·{tags}】新发布：《{title}》{doc_no}\n{summary}\n查看全文：{url}",
    "push.faq": "【政策订阅·{tags}】新问答：{title}\n{summary}\n查看答复：{url}",
    "push.answer": "您此前咨询的问题现在有了答复：{title}\n{answer}{citation}\n查看：{url}",
    "push.citation": "\n依据：{citation}",
    "push.footer": "\n（发送“退订 主题”取消订阅）",
    "push.notice_summary": "{title}",
    "push.email_subject": "【政策订阅】{title}",
    "push.email_greeting": "{label}：",
    "push.email_footer": "您收到此邮件是因为贵单位订阅了政策主题“{tags}”，如需退订请联系政务公开办公室。—— 政策咨询机器人（自动发送，请勿直接回复）",
    "widget.subs_title": "政策订阅",
    "widget.subs_button": "订阅",
    "widget.subs_open": "订阅政策更新",
    "widget.subs_hint": "勾选主题，有新政策或新问答时在本对话中通知您。",
    "widget.subs_save": "保存订阅",
    "widget.subs_saved": "已保存订阅：{tags}",
    "widget.subs_cleared": "已取消全部订阅。",
    "widget.subs_none": "暂无可订阅的主题。",
    "widget.subs_close": "关闭订阅设置",
    # ticket handling (handoff.tickets.handling): interim replies and merged duplicates
    "ticket.interim": "您的留言 {no} 正在办理中（{department}），工作人员告知：\n{text}",
    "ticket.interim_summary": "办理中，请发送“查询 {no}”查看",
    "ticket.merged_reply": "您的留言 {no} 与内容相同的留言 {kept} 合并办理，现已答复（{department}）：\n{reply}",
    "ticket.merged_summary": "已合并答复，请发送“查询 {kept}”查看",
    "handoff.category_choice": "留言类型：{category}（如需更改，请回复“咨询”“建议”“投诉”“求助”或“举报”）。",
    "handoff.category_set": "已将留言类型改为“{category}”。",
    "status.merged": "您的留言与内容相同的留言 {kept} 合并办理，该留言的答复将一并发送给您。",
    "widget.form_category_hint": "咨询：了解政策；建议：意见建议；投诉：反映问题；求助：需要帮助。",
}

# Small talk, matched before the FAQ matcher on the whole message (punctuation and spaces removed,
# lower case): intent -> phrases. Emoji-only messages are the intent "emoji".
SMALLTALK: dict[str, list[str]] = {
    "greeting": [
        "你好",
        "您好",
        "你好啊",
        "您好啊",
        "嗨",
        "哈喽",
        "hello",
        "hi",
        "hey",
        "早上好",
        "上午好",
        "中午好",
        "下午好",
        "晚上好",
        "早",
        "早安",
        "在吗你好",
        "你好在吗",
        "请问",
        "你好请问",
        "您好请问",
        "你好呀",
        "大家好",
        "老师好",
        "同志你好",
        "工作人员你好",
    ],
    "presence": ["在吗", "在不在", "有人吗", "有人在吗", "在么", "还在吗", "人呢", "有没有人", "在线吗"],
    "thanks": [
        "谢谢",
        "谢谢你",
        "谢谢您",
        "多谢",
        "感谢",
        "非常感谢",
        "谢啦",
        "谢了",
        "好的谢谢",
        "好的谢谢你",
        "明白了谢谢",
        "知道了谢谢",
        "thanks",
        "thankyou",
        "thx",
        "辛苦了",
        "麻烦了",
        "好的感谢",
    ],
    "farewell": ["再见", "拜拜", "bye", "byebye", "goodbye", "回头见", "先这样", "没有了", "没了", "没事了"],
    "praise": [
        "真棒",
        "很好",
        "太好了",
        "厉害",
        "不错",
        "好用",
        "很有用",
        "非常有用",
        "挺好",
        "点赞",
        "赞",
        "牛",
    ],
    "who": ["你是谁", "你是机器人吗", "你是人工吗", "你是真人吗", "你叫什么", "你能做什么", "你会什么"],
}


def say(key: str, **fields: Any) -> str:
    """The sentence `key` with its fields filled in."""
    text = TEXTS[key]
    return text.format(**fields) if fields else text


def smalltalk_defaults() -> dict[str, SmallTalkEntry]:
    """The built-in small talk (with the window's file applied): intent -> phrases and reply. An
    administrator's edits (knowledge.smalltalk, the console's 寒暄语 page) replace whole intents."""
    intents = [*SMALLTALK, "emoji"]
    return {
        intent: SmallTalkEntry(intent, tuple(SMALLTALK.get(intent, ())), TEXTS.get(f"smalltalk.{intent}", ""))
        for intent in intents
    }


def load_overrides(path: str | None) -> None:
    """Apply a window's own sentences and small-talk phrases from a JSON file (unknown keys refused)."""
    if not path:
        return
    import json
    from pathlib import Path

    data = json.loads(Path(path).read_text(encoding="utf-8"))
    unknown = set(data.get("texts", {})) - set(TEXTS)
    if unknown:
        raise ValueError(f"unknown text keys in {path}: {sorted(unknown)}")
    TEXTS.update({k: str(v) for k, v in data.get("texts", {}).items()})
    for intent, phrases in data.get("smalltalk", {}).items():
        SMALLTALK[str(intent)] = [str(p) for p in phrases]


def widget_texts() -> dict[str, str]:
    """The widget's sentences (`widget.*` keys, window overrides applied), keyed without the prefix."""
    return {k[len("widget.") :]: v for k, v in TEXTS.items() if k.startswith("widget.")}


def ticket_card(view: Any) -> str:
    """The card of a newly opened ticket: number, due date and code, each once, one date format."""
    return say(
        "ticket.card",
        no=view.no,
        due=date_text(view.due_date),
        code=getattr(view, "verify_code", "") or "",
        department=view.department,
    )


def ticket_interim(data: dict[str, Any]) -> str:
    """An interim reply (阶段性答复): the ticket stays open."""
    return say(
        "ticket.interim",
        no=data.get("ticket_no", ""),
        department=str(data.get("department") or "政务公开").strip(),
        text=str(data.get("text") or "").strip(),
    )


def ticket_merged_reply(data: dict[str, Any]) -> str:
    """The kept ticket's answer to the citizen of a duplicate merged into it."""
    return say(
        "ticket.merged_reply",
        no=data.get("ticket_no", ""),
        kept=data.get("kept_no", ""),
        department=str(data.get("department") or "政务公开").strip(),
        reply=str(data.get("reply") or "").strip(),
    )


def date_text(day: dt.date) -> str:
    """The one date format citizens read."""
    return f"{day.year}年{day.month}月{day.day}日"


# --- subscription pushes (bot/subscriptions.py rows, rendered by bot.notifier) ----------------------
def subscription_push(kind: str, data: dict[str, Any], *, chat: bool = True) -> str:
    """A subscription push (新政策 / 新问答) or an "answer now published" notice, from its row data."""
    fields = {
        "tags": "、".join(data.get("tags") or []),
        "title": str(data.get("title") or ""),
        "doc_no": f"（{data['doc_no']}）" if data.get("doc_no") else "",
        "summary": str(data.get("summary") or ""),
        "url": str(data.get("url") or ""),
    }
    if kind == "answer_published":
        citation = str(data.get("citation") or "")
        return say(
            "push.answer",
            title=fields["title"],
            answer=str(data.get("answer") or data.get("summary") or ""),
            citation=say("push.citation", citation=citation) if citation else "",
            url=fields["url"],
        )
    text = say("push.policy" if data.get("item") == "policy" else "push.faq", **fields)
    return text + say("push.footer") if chat else text


def subscription_notice(data: dict[str, Any], *, now: dt.datetime | None = None) -> dict[str, str]:
    """The fields of a subscription push as a notice (订阅通知), with the same names as a ticket reply's
    (`ticket_reply_notice`) so one template field mapping serves both: the 文号 where the ticket number
    goes, the topic where the department goes, the title as summary."""
    when = (now or dt.datetime.now(CHINA_TZ)).astimezone(CHINA_TZ)
    return {
        "ticket_no": str(data.get("doc_no") or data.get("id") or ""),
        "department": "、".join(data.get("tags") or []) or "政策订阅",
        "summary": say("push.notice_summary", title=str(data.get("title") or "")),
        "date": when.strftime("%Y-%m-%d"),
        "title": str(data.get("title") or ""),
        "url": str(data.get("url") or ""),
    }
