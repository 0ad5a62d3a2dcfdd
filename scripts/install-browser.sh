#!/usr/bin/env bash
# Install Debian's Chromium, and a Chinese font so pages render as people see them, for the
# browser tests (tests/browser), when it can be done here.
# 为浏览器测试安装 Debian 的 Chromium 和中文字体（能安装时）。
#
# Idempotent: does nothing when /usr/bin/chromium and the font exist. Never fails the build: when it cannot
# install (not root, no apt-get, no network) it says why and exits 0, and the browser tests skip
# with that reason (or fail under DISPATCH_REQUIRE_BROWSER=1).
# Playwright's own browser download ("playwright install") is never used.
set -u

CHROMIUM=/usr/bin/chromium
CJK_FONT=/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc

if [ -x "$CHROMIUM" ] && [ -e "$CJK_FONT" ]; then
    exit 0
fi
if [ "$(id -u)" != "0" ]; then
    echo "install-browser: $CHROMIUM is missing and this is not root; browser tests will skip." \
         "/ 缺少 $CHROMIUM 且非 root，浏览器测试将跳过。"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-browser: $CHROMIUM is missing and there is no apt-get; browser tests will skip." \
         "/ 缺少 $CHROMIUM 且没有 apt-get，浏览器测试将跳过。"
    exit 0
fi
echo "install-browser: installing chromium from Debian / 正在安装 chromium"
if apt-get update -qq \
   && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        chromium chromium-driver fonts-noto-cjk >/dev/null; then
    echo "install-browser: $("$CHROMIUM" --version 2>/dev/null || echo chromium) installed / 已安装"
else
    echo "install-browser: apt-get could not install chromium; browser tests will skip." \
         "/ apt-get 无法安装 chromium，浏览器测试将跳过。"
fi
exit 0
