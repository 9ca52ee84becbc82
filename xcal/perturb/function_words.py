"""Closed-class function words per language, for ``function_word_drop`` and ``function_word_move``.

A *function word* here is a free-standing word of a closed class in the sense
of Universal Dependencies: pronouns (PRON), determiners (DET), adpositions
(ADP), coordinating and subordinating conjunctions (CCONJ, SCONJ), auxiliaries
and copulas (AUX) and particles (PART) such as negation. Content words (nouns,
verbs, adjectives, most adverbs) never are, and neither is a word whose
frequent reading is a content word even if it also has a function reading
(Thai ถึง "to / arrive", ให้ "for / give", ได้ "can / get"; Arabic عاد
"returned", أصبح "became"): dropping one of those changes what a sentence
says, not only its grammar. Numerals are left out too (they carry content).

Each list is the closed-class part of the stopwords-iso list of the language
(``stopwordsiso``, whose lists merge many sources and so hold hundreds of
content words: English has 1,298 entries, including "said", "computer" and
"problem"), checked word by word against the definition above, plus a few
closed-class words that list lacks. Languages without a checked list are left
unchanged by the function-word perturbations (their manifests say
``stopwords: "none"``); pass ``stopwords_file`` to use a list of your own.
"""

from __future__ import annotations

#: Version of the lists below; recorded in the perturbations' manifests.
FUNCTION_WORDS_VERSION = 1


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# fmt: off
CLOSED_CLASS: dict[str, frozenset[str]] = {
    "en": _words("""
        i me my mine myself we us our ours ourselves you your yours yourself yourselves
        he him his himself she her hers herself it its itself they them their theirs
        themselves who whom whose which what that this these those
        a an the some any no every each either neither both all another such
        of in on at by for with about against between into through during before after
        above below to from up down over under across along among around behind beside
        beyond near off onto out upon toward towards within without via per than
        and or but nor yet so because although though while whereas if unless until
        since whether as once lest
        am is are was were be been being
        will would shall should can could may might must ought
        not n't to 's 'll 're 've 'd 'm
    """),
    "de": _words("""
        ich mich mir mein meine meinen meinem meiner meines du dich dir dein deine deinen
        deinem deiner deines er ihn ihm sein seine seinen seinem seiner seines sie ihr ihre
        ihren ihrem ihrer ihres es wir uns unser unsere unseren unserem unserer euch euer
        eure euren eurem eurer sich man
        der die das den dem des ein eine einen einem einer eines kein keine keinen keinem
        keiner keines dieser diese dieses diesen diesem jener jene jenes jenen jenem
        jeder jede jedes jeden jedem welcher welche welches welchen welchem alle aller allen
        in im ins an am ans auf aus bei beim mit nach seit von vom zu zum zur durch für
        fürs gegen ohne um unter über vor hinter neben zwischen bis während wegen trotz
        statt außer gegenüber entlang
        und oder aber sondern denn doch sowie weil dass daß ob wenn als wie obwohl damit
        bevor nachdem sobald solange während falls
        bin bist ist sind seid war warst waren wart gewesen sein
        werde wirst wird werden werdet wurde wurden
        worden kann kannst können könnt konnte konnten muss musst müssen müsst musste
        mussten soll sollst sollen sollt sollte sollten
        darf darfst dürfen dürft durfte durften
        würde würden wäre wären
        nicht nein zu
    """),
    "fr": _words("""
        je me moi tu te toi il elle on nous vous ils elles le la les lui leur leurs eux se
        soi y en mon ma mes ton ta tes son sa ses notre nos votre vos
        qui que qu' quoi dont lequel laquelle lesquels lesquelles duquel auquel
        ce cet cette ces celui celle ceux celles un une des du au aux quelque quelques
        chaque aucun aucune tout toute tous toutes
        à de dans par pour sur sous avec sans chez entre vers contre depuis pendant avant
        après selon parmi malgré envers jusque jusqu' hors
        et ou mais donc or ni car que qu' si comme quand lorsque lorsqu' puisque puisqu'
        quoique parce
        suis es est sommes êtes sont étais était étions étiez étaient été être
        serai sera seront serait
        seraient
        ne n' pas
    """),
    "es": _words("""
        yo me mí mi mis tú te ti tu tus él ella ello le lo la les los las nos nosotros
        nosotras os vosotros vosotras ellos ellas se sí su sus nuestro nuestra nuestros
        nuestras vuestro vuestra usted ustedes
        que quien quienes cual cuales cuyo cuya cuyos cuyas
        el un una unos unas este esta estos estas ese esa esos esas aquel aquella aquellos
        aquellas cada algún alguna algunos algunas ningún ninguna todo toda todos todas
        a al ante bajo con contra de del desde durante en entre hacia hasta mediante para
        por según sin sobre tras
        y e o u ni pero sino aunque porque pues si como cuando mientras
        soy eres es somos sois son era eras éramos eran fui fueron sido ser estoy
        estás está estamos están estaba estaban estado estar he has ha hemos han había
        habían habido haber
        no
    """),
    "ru": _words("""
        я меня мне мной ты тебя тебе тобой он его него ему нему им ним нём она её неё ей
        ней ею оно мы нас нам нами вы вас вам вами они их них ими ними себя себе собой
        мой моя моё мои твой твоя твоё твои свой своя своё свои наш наша наше наши ваш ваша
        ваше ваши
        который которая которое которые которого которой которых кто что чей
        этот эта это эти этого этой этих тот та то те того той тех весь вся всё все всех
        каждый каждая каждое какой какая какое какие
        в во на с со к ко по о об от до из у за над под при без для через между перед
        после около против среди
        и а но или да либо что чтобы если когда пока хотя потому так как ли
        был была было были быть будет будут буду
        не ни бы же ли
    """),
    "bg": _words("""
        аз мен ме мене ти теб те тебе той него го нему му тя нея я ней ѝ то ние нас ни нам
        вие вас ви вам те тях ги тям им себе си се
        мой моя мое мои твой твоя твое твои негов нейна нейно нейни наш наша наше наши ваш
        ваша ваше ваши техен тяхна тяхно техни
        който която което които кой коя кое кои какъв каква какво какви чий
        този тази това тези онзи онази онова онези всеки всяка всяко всички
        в във на с със към по за от до из у при без през между пред след около срещу
        и а но или ако че когато докато защото макар дали
        съм си е сме сте са бях беше бяха бил била било били ще
        не ли да нито
    """),
    "el": _words("""
        εγώ εμένα με μου εσύ εσένα σε σου αυτός αυτή αυτό αυτού αυτής τον την το του της
        εμείς εμάς μας εσείς εσάς σας αυτοί αυτές αυτά αυτών τους τις τα των
        ο η οι ένας μία μια ένα ενός μιας κάθε κάποιος κάποια κάποιο όλος όλη όλο όλοι
        όλες όλα αυτός αυτή εκείνος εκείνη εκείνο εκείνοι εκείνες εκείνα
        που οποίος οποία οποίο οποίοι οποίες οποία ποιος ποια ποιο τι
        σε στο στη στην στον στα στους στις στης στου από με για προς χωρίς μέχρι κατά
        μετά πριν μεταξύ παρά αντί
        και ή αλλά όμως ούτε αν όταν ενώ επειδή γιατί ότι πως ώστε
        είμαι είσαι είναι είμαστε είστε ήμουν ήταν ήμασταν
        θα να
        δεν μην όχι
    """),
    "tr": _words("""
        ben beni bana bende benden benim sen seni sana sende senden senin o onu ona onda
        ondan onun biz bizi bize bizde bizden bizim siz sizi size sizde sizden sizin onlar
        onları onlara onlarda onlardan onların kendi kendisi
        bu şu bunu şunu bunun şunun bunlar şunlar her bazı hiç tüm bütün bir hangi
        ile için gibi kadar göre karşı rağmen beri sonra önce
        ve veya ya ama fakat ancak çünkü eğer ki de da ise hem
        değil mi mı mu mü
    """),
    "vi": _words("""
        tôi tao tớ mình chúng ta chúng tôi bạn nó họ hắn
        này đó kia ấy những các mọi mỗi một vài
        của trong trên dưới với bởi tại giữa
        và hoặc hay nhưng mà nếu thì vì nên tuy khi
        là đã đang sẽ bị
        không chưa chẳng cũng
    """),
    "zh": _words("""
        我 你 您 他 她 它 我们 你们 他们 她们 它们 自己 咱们
        这 那 这个 那个 这些 那些 每 各 某
        的 地 得 之 了 着 过 吗 呢 吧 啊 呀 嘛
        在 从 向 把 被 和 与 及 或 或者 但 但是 而 而且 因为 所以 如果 虽然
        是 能 可以 应该
        不 没 也 都 就 才
    """),
    "ja": _words("""
        の は が を に で と も へ から まで より や か ね よ な ば けれど けど し ので のに
        です でした だ だった ます ました ません ない
        これ それ あれ この その あの 私 わたし 僕 彼 彼女 彼ら 私たち
    """),
    "ar": _words("""
        أنا أنت أنتِ أنتم أنتن هو هي نحن هم هن هما
        هذا هذه ذلك تلك هؤلاء أولئك هنا هناك
        الذي التي الذين اللذان اللتان اللواتي اللاتي
        في من على إلى عن مع حول عند لدى بين منذ حتى خلال ضد نحو فى الى
        و أو أم ثم لكن بل إن أن لأن كي لو إذا إذ حيث كما بينما
        كان كانت كانوا يكون تكون ليس ليست
        لا لم لن قد سوف هل ما لقد
    """),
    "th": _words("""
        ผม ฉัน ดิฉัน เรา คุณ เขา เธอ มัน พวกเขา พวกเรา ตัวเอง
        นี้ นั้น โน้น ทุก บาง แต่ละ
        ของ ใน บน ที่ จาก กับ แก่ โดย สำหรับ ระหว่าง ตั้งแต่ แห่ง ภายใน
        และ หรือ แต่ ซึ่ง ว่า ถ้า หาก เมื่อ เพราะ เนื่องจาก ขณะ จึง ดังนั้น
        คือ จะ ก็ เคย
        ไม่ มิ แล้ว นะ ครับ ค่ะ
    """),
    "sw": _words("""
        mimi wewe yeye sisi ninyi wao
        huyu huyo yule hawa hao wale hiki hicho kile hivi hivyo vile hii hiyo ile
        wa ya la za cha vya kwa katika na kama hadi
        au lakini ila kwamba ingawa kwa kabla baada
        ni si
    """),
    "hi": _words("""
        मैं मुझे मेरा मेरी मेरे तुम तुम्हें तुम्हारा आप आपका आपकी आपके वह वे उसे उन्हें उसका उसकी
        उसके उनका उनकी उनके हम हमें हमारा हमारी हमारे यह ये इसे इन्हें इसका इसकी इसके
        जो जिस जिसे जिन्हें कौन क्या कोई कुछ
        का की के को में से पर तक ने लिए द्वारा साथ
        और या लेकिन परंतु कि अगर यदि क्योंकि जब तो
        है हैं था थी थे हो होगा होगी
        नहीं न भी ही
    """),
    "ur": _words("""
        میں مجھے میرا میری میرے تم تمہیں تمہارا آپ وہ وے اسے انہیں اس کا کی کے ہم ہمیں ہمارا
        ہماری ہمارے یہ انہوں جو جس کون کوئی کچھ
        کو سے پر تک نے لیے ساتھ
        اور یا لیکن کہ اگر کیونکہ جب تو
        ہے ہیں تھا تھی تھے ہو
        نہیں بھی ہی
    """),
}
# fmt: on
